"""Names of every file grokinterp writes, in one place: a run directory, a sweep folder,
and the forecast's output folder.

A run directory::

    RUN/
      config.json              RunConfig.to_json()
      split.json               {"train_idx": [...]}: indices into the p^2 pairs (i = a*p + b)
      data.json                a toy run's data description, in place of split.json
                               (docs/toys.md)
      metrics.csv              one row per epoch: epoch, lr, train_loss, test_loss,
                               train_acc, test_acc (test values and accuracies only on
                               eval epochs, blank elsewhere)
      checkpoints/epoch_000000.safetensors ...   model state dicts, float32
      optimizer.safetensors    AdamW state at the latest checkpoint (for --resume)
      analysis.csv             tidy table: epoch, measure, key, value   (grokinterp analyze)
      summary.json             key frequencies, phases, final values     (grokinterp analyze)
      frames.npz               the epoch-slider frames                    (grokinterp analyze)
      figures/                 HTML, PNG, SVG figures and report.html    (grokinterp figures)
        plotly.min.js          plotly.js, once, for the per-figure HTML files

A sweep folder (:mod:`grokinterp.sweep.manifest`)::

    SWEEP/
      manifest.json  spec.toml  runs/<run name>/  runs.csv  laws.json  figures/
      .lock  .locks/

The forecast's output folder (``grokinterp forecast --evaluate / --calibrate --out OUT``)::

    OUT/
      forecast.json  forecast-calibration.json  figures/forecast.{html,png,svg}
"""

from __future__ import annotations

import re
from pathlib import Path

CONFIG = "config.json"
SPLIT = "split.json"
DATA = "data.json"  # a toy run's data description (grokinterp.models.train), in place of split
METRICS = "metrics.csv"
CHECKPOINT_DIR = "checkpoints"
OPTIMIZER = "optimizer.safetensors"
ANALYSIS_TABLE = "analysis.csv"
SUMMARY = "summary.json"
FRAMES = "frames.npz"
FIGURES_DIR = "figures"
REPORT = "report.html"
PLOTLY_JS = "plotly.min.js"

# a sweep folder
MANIFEST = "manifest.json"
SPEC_COPY = "spec.toml"
RUNS_DIR = "runs"
RUNS_TABLE = "runs.csv"
LAWS_FILE = "laws.json"
SWEEP_LOCK = ".lock"
SWEEP_LOCKS_DIR = ".locks"  # one lock file per run, held by the worker training it

# the forecast's output folder
FORECAST = "forecast.json"
FORECAST_CALIBRATION = "forecast-calibration.json"
FORECAST_FIGURE = "forecast"  # figures/forecast.html, .png, .svg

CHECKPOINT_FORMAT = "grokinterp-checkpoint-v1"
OPTIMIZER_FORMAT = "grokinterp-optimizer-v1"

METRIC_COLUMNS = ("epoch", "lr", "train_loss", "test_loss", "train_acc", "test_acc")

_CHECKPOINT_RE = re.compile(r"^epoch_(\d+)\.safetensors$")


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:06d}.safetensors"


def checkpoint_path(run_dir: Path, epoch: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / checkpoint_name(epoch)


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch a checkpoint file name encodes, or None for any other file."""
    match = _CHECKPOINT_RE.match(Path(path).name)
    return int(match.group(1)) if match else None
