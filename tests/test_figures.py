"""write_figures: HTML for every figure, report.html, static export or its fallback."""

import json
import logging
import shutil

import pytest
from _synthetic_analysis import synthetic_summary, synthetic_table

from grokinterp import figures, files
from grokinterp.config import RunConfig
from grokinterp.figures import export

EXPECTED = {
    "loss",
    "embed_spectrum",
    "embed_spectrum_final",
    "wl_spectrum",
    "wl_spectrum_final",
    "gini",
    "progress_losses",
    "excluded_loss_per_frequency",
    "weight_norm",
    "attention",
    "neuron_clusters",
    "neurons_per_frequency",
    "logit_structure",
}


def write_synthetic_analysis(run_dir, p=13, n_heads=4, d_mlp=32):
    synthetic_table(p=p, n_heads=n_heads).to_csv(run_dir / files.ANALYSIS_TABLE, index=False)
    (run_dir / files.SUMMARY).write_text(json.dumps(synthetic_summary(p=p, d_mlp=d_mlp)))


@pytest.fixture
def synthetic_run(tmp_path):
    """A run directory holding only a config and a synthetic analysis (no checkpoints)."""
    run_dir = tmp_path / "synthetic"
    run_dir.mkdir()
    (run_dir / files.CONFIG).write_text(RunConfig(p=13, n_heads=4).to_json())
    write_synthetic_analysis(run_dir)
    return run_dir


@pytest.fixture
def no_browser(monkeypatch):
    monkeypatch.setattr(export, "find_browser", lambda: None)


def test_html_figures_and_report(synthetic_run, no_browser):
    written = figures.write_figures(synthetic_run, formats=("html",))
    folder = synthetic_run / files.FIGURES_DIR
    assert {p.stem for p in written if p.suffix == ".html"} >= EXPECTED
    assert all(p.is_file() and p.parent == folder for p in written)
    assert (folder / files.PLOTLY_JS).is_file()
    report = (folder / files.REPORT).read_text()
    assert report.count("* plotly.js v") == 1  # the library inlined exactly once
    assert "<script src=" not in report  # nothing fetched: works offline
    assert "frac_train" in report and "weight_decay" in report  # the config
    assert "circuit_formation_end" in report and "excluded loss peak" in report  # phases
    assert all(f"id='{name}'" in report for name in EXPECTED)
    assert not list(folder.glob(".*tmp"))  # atomic writes leave no scratch files


def test_no_browser_writes_html_only_with_one_warning(synthetic_run, no_browser, caplog):
    with caplog.at_level(logging.WARNING, logger="grokinterp.figures"):
        written = figures.write_figures(synthetic_run)
    assert {p.suffix for p in written} == {".html", ".js"}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no Chrome/Chromium" in warnings[0].getMessage()


def test_find_browser_honours_env_and_rejects_non_executables(monkeypatch, tmp_path):
    fake = tmp_path / "my-chrome"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv(figures.BROWSER_ENV, str(fake))
    assert figures.find_browser() == str(fake)
    fake.chmod(0o644)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("BROWSER_PATH", raising=False)
    monkeypatch.setattr(export, "_BROWSER_PATHS", ())
    monkeypatch.setattr(export, "_BROWSER_NAMES", ("my-chrome",))
    import choreographer.cli._cli_utils as cli_utils

    monkeypatch.setattr(cli_utils, "get_chrome_download_path", lambda **kw: None)
    assert figures.find_browser() is None


def test_unknown_format_is_refused(synthetic_run):
    with pytest.raises(ValueError, match="unknown figure format"):
        figures.write_figures(synthetic_run, formats=("html", "pdf"))


def test_missing_analysis_says_what_to_run(tmp_path):
    from grokinterp.storage import RunFileError

    with pytest.raises(RunFileError, match="grokinterp analyze"):
        figures.write_figures(tmp_path)


def test_attention_map_from_the_final_checkpoint(tiny_run, tmp_path, no_browser):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run.path, run_dir)
    cfg = tiny_run.config
    write_synthetic_analysis(run_dir, p=cfg.p, n_heads=cfg.n_heads, d_mlp=cfg.d_mlp)
    written = figures.write_figures(run_dir, formats=("html",))
    assert run_dir / files.FIGURES_DIR / "attention_map.html" in written
    report = (run_dir / files.FIGURES_DIR / files.REPORT).read_text()
    assert f"at epoch {cfg.epochs}" in report


@pytest.mark.skipif(figures.find_browser() is None, reason="no Chrome/Chromium installed")
def test_static_export_in_one_session(synthetic_run):
    written = figures.write_figures(synthetic_run, formats=("png", "svg"))
    folder = synthetic_run / files.FIGURES_DIR
    for name in EXPECTED:
        assert (folder / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
        assert b"<svg" in (folder / f"{name}.svg").read_bytes()[:2000]
    assert not list(folder.glob(".kaleido-*"))
    assert {p.suffix for p in written} == {".png", ".svg", ".html"}  # + report.html


def _rgb(colour: str) -> tuple[float, ...]:
    colour = colour.strip()
    if colour.startswith("#"):
        return tuple(int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return tuple(float(v) for v in colour[colour.index("(") + 1 : -1].split(",")[:3])


def _series_colours(fig) -> dict[str, str]:
    """Colour of each series a reader tells apart: one per legend group (or trace)."""
    out = {}
    for i, trace in enumerate(fig.data):
        group = trace.legendgroup or trace.name or f"trace {i}"
        if group == "phases":  # legend entries of the phase bands and T_mem/T_grok lines
            continue
        line = getattr(trace, "line", None)
        marker = getattr(trace, "marker", None)
        colour = (line.color if line is not None else None) or (
            marker.color if marker is not None else None
        )
        if isinstance(colour, str):
            assert out.setdefault(group, colour) == colour, f"{group} drawn in two colours"
    return out


@pytest.mark.parametrize("key_freqs", [(3, 5), (1, 2, 3, 4, 5, 6)])
def test_no_figure_shows_two_series_in_one_colour(key_freqs):
    import numpy as np

    from grokinterp import plots

    table = synthetic_table(p=13, key_freqs=key_freqs)
    summary = synthetic_summary(p=13, key_freqs=key_freqs)
    maps = np.random.default_rng(0).random((4, 13, 13))
    drawn = figures.draw_figures(table, summary, RunConfig(p=13, n_heads=4), maps, 100)
    assert EXPECTED | {"attention_map"} == set(drawn)
    metrics = {"epoch": np.arange(5), **{k: np.ones(5) for k in ("train_loss", "test_loss")}}
    metrics |= {k: np.ones(5) for k in ("train_acc", "test_acc")}
    drawn["metrics"] = plots.metric_curves(metrics)
    drawn["logit_profile"] = plots.logit_profile(np.cos(np.arange(13.0)), key_freqs)
    for name, fig in drawn.items():
        colours = _series_colours(fig)
        series = sorted(colours)
        for i, a in enumerate(series):
            for b in series[i + 1 :]:
                distance = np.linalg.norm(np.subtract(_rgb(colours[a]), _rgb(colours[b])))
                assert distance >= 60, (
                    f"{name}: {a!r} and {b!r} look alike ({colours[a]}, {colours[b]})"
                )


def test_sharpness_is_drawn_only_when_the_analysis_computed_it():
    import pandas as pd

    table = synthetic_table(p=13)
    summary = synthetic_summary(p=13)
    config = RunConfig(p=13, n_heads=4)
    assert "sharpness" not in figures.draw_figures(table, summary, config)
    rows = pd.DataFrame(
        {
            "epoch": [0, 0, 100, 100, 200],
            "measure": ["sharpness"] * 5,
            "key": ["", "iterations", "", "iterations", ""],
            "value": [1.5, 12.0, 40.0, 9.0, float("nan")],  # NaN: not computed there
        }
    )
    drawn = figures.draw_figures(pd.concat([table, rows]), summary, config)
    sharp = next(t for t in drawn["sharpness"].data if t.name == "sharpness")
    assert list(sharp.x) == [0, 100] and list(sharp.y) == [1.5, 40.0]
    assert drawn["sharpness"].layout.yaxis.type == "log"


def test_a_task_in_another_basis_says_so_and_gets_its_sliders(tmp_path, caplog, no_browser):
    from grokinterp.analysis import analyze
    from grokinterp.bench import write_random_run
    from tests.conftest import tiny_config

    table = synthetic_table(p=13)
    summary = {**synthetic_summary(p=13), "basis": "discrete log to g=2 (Z_12)"}
    drawn = figures.draw_figures(table, summary, RunConfig(p=13, n_heads=4))
    for name in ("embed_spectrum", "embed_spectrum_final", "wl_spectrum", "wl_spectrum_final"):
        assert ", discrete log to g=2 (Z_12) basis" in drawn[name].layout.title.text, name
    plain = figures.draw_figures(table, synthetic_summary(p=13), RunConfig(p=13, n_heads=4))
    assert "basis" not in plain["embed_spectrum_final"].layout.title.text
    # the epoch sliders are drawn from the frames analyze stored, in the task's basis ...
    sliders = {f"scrub_{n}" for n in ("embedding_spectrum", "neuron_clusters", "attention")}
    for op in ("add", "mul"):
        run = write_random_run(tiny_config(operation=op), tmp_path / op, n_checkpoints=2)
        analyze(run)
        written = {p.stem for p in figures.write_figures(run.path, formats=("html",))}
        assert sliders | {"scrub_logit_profile"} <= written, op
    # ... and a task without a basis gets none, and is told why
    rand = write_random_run(tiny_config(operation="rand"), tmp_path / "rand", n_checkpoints=2)
    analyze(rand)
    assert not (rand.path / files.FRAMES).exists()
    with caplog.at_level(logging.WARNING):
        written = {p.stem for p in figures.write_figures(rand.path, formats=("html",))}
    assert not written & sliders
    assert "no epoch-slider frames for operation 'rand': no Fourier basis" in caplog.text
