"""Every notebook in notebooks/ runs top to bottom (nbclient) on a tiny saved model, and is
committed executed (on the zoo model, by notebooks/execute.py) from exactly its code.

Each notebook starts with a code cell tagged `parameters`; the test appends assignments to
it (a tiny random model's folder, QUICK = True, a temporary OUT, and the notebook's own
entries of TINY_PARAMETERS, e.g. single-character target tokens for the character-level
tokenizer) and fails on any cell error. A new notebook needs no change here unless its
defaults cannot run on the tiny model.

The committed outputs come from the committed code: every code cell has an execution
count, 1, 2, 3, ... in order; the code hash notebooks/execute.py recorded when it ran the
notebook equals the hash of the committed code, which is the code the tiny-model run
executes (with only the parameters cell's overrides appended); every plotly figure carries
a PNG (GitHub shows no plotly JSON).
"""

import ast
import importlib.util
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
TINY_PARAMETERS = {
    "01_dla_and_lens.ipynb": {"PROMPTS": ["The cat sat on", "A dog ran to"], "TARGET": "e", "CONTRAST": "t"},
    "08_mote_experts.ipynb": {"MODEL": None},  # builds the planted MoE: the tiny llama is dense
}
ROOT = Path(__file__).resolve().parents[1]
THREADS = "1"  # tiny models on a shared CPU: thread hand-offs cost more than the matmuls


def parameters_cell(notebook):
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1 and cells[0].cell_type == "code", "a notebook needs exactly one code cell tagged 'parameters'"
    return cells[0]


def test_there_are_notebooks():
    assert NOTEBOOKS, "notebooks/*.ipynb not found"


def _code_hash():
    spec = importlib.util.spec_from_file_location("notebook_execute", ROOT / "notebooks" / "execute.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.code_hash


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_committed_executed_from_its_code(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    assert notebook.cells[0].cell_type == "markdown", "start with the question the notebook answers"
    parameters_cell(notebook)
    counts = [cell.execution_count for cell in notebook.cells if cell.cell_type == "code"]
    assert counts == list(range(1, len(counts) + 1)), f"execution counts {counts}: run it with notebooks/execute.py"
    recorded = notebook.metadata.get("steerlens", {})
    assert recorded.get("code_sha256") == _code_hash()(notebook), \
        "the code changed since the outputs were made: run python notebooks/execute.py " + str(path.relative_to(ROOT))
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            assert "application/vnd.plotly.v1+json" not in data or "image/png" in data, "a figure without a PNG"
            assert output.get("output_type") != "error", "a cell failed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_tiny_model(path, tiny_llama_folder, tmp_path, monkeypatch):
    notebook = nbformat.read(path, as_version=4)
    cell = parameters_cell(notebook)
    overrides = {"MODEL": str(tiny_llama_folder), "QUICK": True, "OUT": str(tmp_path / "runs"),
                 **TINY_PARAMETERS.get(path.name, {})}
    defined = {node.id for node in ast.walk(ast.parse(cell.source)) if isinstance(node, ast.Name)}
    unknown = [name for name in overrides if name not in defined]
    assert not unknown, f"{path.name}: the parameters cell does not define {unknown}"
    cell.source += "\n\n# CI: tiny model\n" + "\n".join(f"{name} = {value!r}" for name, value in overrides.items())
    monkeypatch.setenv("OMP_NUM_THREADS", THREADS)  # read by torch when the kernel imports it
    client = nbclient.NotebookClient(notebook, timeout=240, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError on the first failing cell
