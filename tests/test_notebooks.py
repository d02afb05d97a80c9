"""The three notebooks run top to bottom against a tiny analysed run, and are stored clean."""

import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from grokinterp.analysis import analyze

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = ("01_training_and_grokking.ipynb", "02_fourier_circuit.ipynb", "03_progress_measures.ipynb")


@pytest.fixture(scope="module")
def analysed_run(tiny_run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("nb") / "tiny"
    shutil.copytree(tiny_run.path, run_dir)
    analyze(run_dir)
    return run_dir


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "RUN_DIR" in code[0].source and "GROKINTERP_RUN" in code[0].source


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, analysed_run, monkeypatch):
    monkeypatch.setenv("GROKINTERP_RUN", str(analysed_run))
    root = str(NOTEBOOKS.parent)  # the kernel imports grokinterp from this checkout
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    )
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    errors = [
        o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"
    ]
    assert not errors
