"""`python -m interp.cli` runs the `steerlens` command."""

import sys

from . import main

sys.exit(main())
