"""The CLI end to end on a tiny run: train -> analyze -> figures, and one-line errors."""

import shutil

import pytest

from grokinterp import files
from grokinterp.cli import main


@pytest.fixture
def run_dir(tmp_path, tiny_run):
    out = tmp_path / "runs" / "tiny"
    shutil.copytree(tiny_run.path, out)
    return out


def test_analyze_then_figures(run_dir, capsys):
    assert main(["analyze", str(run_dir), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "T_mem" in printed and "key frequencies" in printed
    assert (run_dir / files.ANALYSIS_TABLE).is_file() and (run_dir / files.SUMMARY).is_file()
    # a folder of runs works too, and a second analyze only reads what is there
    assert main(["analyze", str(run_dir.parent), "--quiet"]) == 0
    assert main(["figures", str(run_dir.parent), "--formats", "html"]) == 0
    figures = run_dir / files.FIGURES_DIR
    assert (figures / files.REPORT).is_file()
    assert "open file://" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["analyze", "{run}", "--key-freqs", "99"], "key frequencies [99] outside 1..5"),
        (["analyze", "{run}", "--key-freqs", "1,x"], "expected comma-separated integers"),
        (["analyze", "{run}", "--measures", "foo"], "unknown measure(s) ['foo']"),
        (["analyze", "{run}", "--threshold", "0"], "threshold must lie in (0, 1]"),
        (["analyze", "{run}/nowhere"], "no such run directory"),
        (["figures", "{run}"], "run 'grokinterp analyze"),
        (["train", "--resume", "{run}/nowhere"], "no run to resume"),
        (["train", "--resume", "{run}", "--p", "13"], "drop the config options"),
    ],
)
def test_bad_input_gives_one_line_error(run_dir, capsys, argv, message):
    assert main([a.format(run=run_dir) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
