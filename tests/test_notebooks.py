"""The four notebooks run top to bottom against a small run that groks, and are stored clean.

The run (tests/conftest.py ``grokking_config``) trains once per session in about a minute
on 2 CPU cores; its per-frequency sections then run over real key frequencies.
"""

import os
import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from grokinterp.storage import read_json

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
NAMES = (
    "01_training_and_grokking.ipynb",
    "02_fourier_circuit.ipynb",
    "03_progress_measures.ipynb",
    "04_scrubbing_and_ablations.ipynb",
)


@pytest.fixture(scope="module")
def analysed_run(grokking_run, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("nb") / "groks"
    shutil.copytree(grokking_run.path, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def executed(analysed_run):
    """Each notebook executed against the run: {name: notebook with outputs}."""
    env = {
        "GROKINTERP_RUN": str(analysed_run),
        # the kernel imports grokinterp from this checkout
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(NOTEBOOKS.parent), os.environ.get("PYTHONPATH")])
        ),
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    out = {}
    try:
        for name in NAMES:
            nb = nbformat.read(NOTEBOOKS / name, as_version=4)
            NotebookClient(
                nb,
                timeout=300,
                kernel_name="python3",
                shutdown_kernel="immediate",
                resources={"metadata": {"path": str(NOTEBOOKS)}},
            ).execute()
            out[name] = nb
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def _outputs(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


def _text(nb) -> str:
    parts = []
    for o in _outputs(nb):
        if o.output_type == "stream":
            parts.append(o.text)
        elif "data" in o and "text/plain" in o.data:
            parts.append(o.data["text/plain"])
    return "\n".join(parts)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.nbformat == 4
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "RUN_DIR" in code[0].source and "GROKINTERP_RUN" in code[0].source


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(name, executed):
    outputs = _outputs(executed[name])
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, errors[0].get("evalue") if errors else None
    # ipywidgets is installed, so tqdm bars render instead of warning
    assert "IProgress not found" not in _text(executed[name])


@pytest.mark.slow
def test_the_run_groks_and_the_per_frequency_sections_found_the_circuit(executed, analysed_run):
    summary = read_json(analysed_run / "summary.json")
    assert summary["final"]["test_acc"] >= 0.99
    assert summary["phases"]["T_grok"]["epoch"] is not None
    # notebook 01 prints the key frequencies it found
    found = re.search(r"key frequencies: \[([\d, ]+)\]", _text(executed[NAMES[0]]))
    assert found, "notebook 01 printed no key frequencies"
    keys = [int(k) for k in found.group(1).split(",")]
    assert keys and keys == summary["key_frequencies"]
    # notebook 04: restricted loss below test loss after grokking, and removing a key
    # frequency hurts more than removing any other one
    text = _text(executed[NAMES[3]])
    assert "restricted below test = True" in text
    worst_key = float(re.search(r"one key frequency removed: ([\d.e+-]+)", text).group(1))
    worst_other = float(re.search(r"one other frequency removed: ([\d.e+-]+)", text).group(1))
    baseline = float(re.search(r"baseline test loss at epoch \d+: ([\d.e+-]+)", text).group(1))
    assert worst_key > worst_other and worst_key > 10 * baseline
    # notebook 02 drew one representative neuron per key frequency
    n02 = [o for o in _outputs(executed[NAMES[1]]) if o.output_type == "display_data"]
    assert len(n02) >= len(keys)


TOY_NOTEBOOK = "05_toy_models.ipynb"


def test_toy_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOKS / TOY_NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert "GROKINTERP_TOY_SMALL" in code[0].source and "GROKINTERP_TOY_DIR" in code[0].source


@pytest.mark.slow
def test_toy_notebook_runs_on_small_settings(tmp_path, monkeypatch):
    """Notebook 05 trains its own small toy runs (no shared run needed)."""
    monkeypatch.setenv("GROKINTERP_TOY_SMALL", "1")
    monkeypatch.setenv("GROKINTERP_TOY_DIR", str(tmp_path))
    path = os.pathsep.join(filter(None, [str(NOTEBOOKS.parent), os.environ.get("PYTHONPATH")]))
    monkeypatch.setenv("PYTHONPATH", path)
    nb = nbformat.read(NOTEBOOKS / TOY_NOTEBOOK, as_version=4)
    NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    ).execute()
    errors = [o for o in _outputs(nb) if o.output_type == "error"]
    assert not errors, errors[0].get("evalue") if errors else None
    text = _text(nb)
    assert (tmp_path / "cf" / "summary.json").is_file()
    assert (tmp_path / "ridge" / "summary.json").is_file()
    diff = float(re.search(r"largest relative difference: ([\d.e+-]+)", text).group(1))
    assert diff < 1e-9
    assert re.search(r"slope [\d.]+, 95% CI", text)
