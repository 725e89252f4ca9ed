"""A device that does not exist is one line (exit 2 on the CLI), before any weights load."""

from __future__ import annotations

import pytest
import torch

from interp.cli import main
from interp.models.errors import ModelLoadError
from interp.models.loading import check_device

MISSING_GPU = f"cuda:{torch.cuda.device_count() + 3}"


@pytest.mark.parametrize("device, message", [(MISSING_GPU, "CUDA GPU"), ("bogus", "unknown device"),
                                             ("tpu", "unknown device")])
def test_a_missing_device_is_one_line(device, message):
    with pytest.raises(ModelLoadError, match=message) as error:
        check_device(device)
    assert "\n" not in str(error.value)


def test_cpu_is_accepted():
    assert check_device("cpu") == torch.device("cpu")


def test_cli_bad_device_exits_2_with_one_line(tiny_llama_folder, capsys):
    assert main(["sites", "--model", str(tiny_llama_folder), "--device", MISSING_GPU]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("steerlens: error: device") and "Traceback" not in err[0]
