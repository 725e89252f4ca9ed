"""Execute notebooks in place on the zoo models, with a static PNG of every figure, so that
GitHub shows them: `python notebooks/execute.py notebooks/01_dla_and_lens.ipynb ...`.

Each notebook runs top to bottom (nbclient) in a fresh kernel whose working folder is a
temporary one (its runs are not committed) with:
- plotly's renderer "plotly_mimetype+png": every `fig.show()` gives the interactive figure
  and a PNG in one output, and a displayed result embeds its main figure as a PNG
  (interp/runs/display.py);
- kaleido's Chrome kept running between figures (an IPython startup file), BROWSER_PATH
  pointing at /usr/bin/chromium when it exists;
- `--threads` torch threads (default 2: the notebooks must run in 10 minutes on 2 cores).

The notebook's metadata records the wall time, the kernel's CPU time (on a shared machine the
better measure of the time on 2 dedicated cores: about CPU time / 2), the threads and `code_sha256`, the hash of
its code cells (`code_hash`), which tests/test_notebooks.py compares with the committed
code: the outputs come from exactly that code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

STARTUP = """\
import warnings
warnings.filterwarnings("ignore", message="The kopts argument is ignored")
warnings.filterwarnings("ignore", message="IProgress not found")  # no ipywidgets: tqdm prints text bars
try:
    from transformers.utils import logging as hf_logging
    hf_logging.disable_progress_bar()  # no "Loading weights" bars in the saved outputs
except Exception:
    pass
try:
    import kaleido
    kaleido.start_sync_server(silence_warnings=True)
except Exception:  # no Chrome: plotly starts one per figure
    pass
"""


def code_hash(notebook) -> str:
    """sha256 of the notebook's code cells, in order (their sources only)."""
    sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    return hashlib.sha256(json.dumps(sources).encode("utf-8")).hexdigest()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def execute(path: Path, threads: int = 2, timeout: int = 3600) -> float:
    """Run `path` in place; returns its wall time in seconds."""
    import nbclient
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as work:
        ipython = Path(work) / "ipython"
        (ipython / "profile_default" / "startup").mkdir(parents=True)
        (ipython / "profile_default" / "startup" / "00-kaleido.py").write_text(STARTUP)
        env = {"PLOTLY_RENDERER": "plotly_mimetype+png", "IPYTHONDIR": str(ipython),
               "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false",
               "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                              os.environ.get("PYTHONPATH", "")])}
        if Path("/usr/bin/chromium").exists():
            env.setdefault("BROWSER_PATH", "/usr/bin/chromium")
        old = {k: os.environ.get(k) for k in env}
        os.environ.update(env)
        try:
            client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                             resources={"metadata": {"path": work}})
            start, cpu = time.perf_counter(), _children_cpu()
            client.execute()
            seconds = time.perf_counter() - start
        finally:
            for key, value in old.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    cpu = _children_cpu() - cpu  # the kernel's CPU time (it has exited): wall time on a shared machine says little
    missing = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code" for out in cell.outputs
               if "application/vnd.plotly.v1+json" in out.get("data", {}) and "image/png" not in out["data"]]
    if missing:
        raise RuntimeError(f"{path}: figures without a PNG in cells {missing}; is Chrome installed?")
    notebook.metadata["steerlens"] = {"code_sha256": code_hash(notebook), "seconds": round(seconds, 1),
                                      "cpu_seconds": round(cpu, 1), "threads": threads,
                                      "machine": platform.machine()}
    nbformat.write(notebook, path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds one cell may take (default: 3600)")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        seconds = execute(path, args.threads, args.timeout)
        cpu = json.loads(path.read_text())["metadata"]["steerlens"]["cpu_seconds"]
        print(f"{path}: {seconds:.0f} s wall, {cpu:.0f} s CPU", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
