"""Liu et al.'s run classes on synthetic accuracy curves, one per class, and in runs.csv."""

from __future__ import annotations

import numpy as np
import pandas as pd

from grokinterp.phases import t_grok, t_mem
from grokinterp.run_classes import CLASSES, run_class, run_classes

EPOCHS = np.arange(0, 5001, 10)


def ramp(at: float, width: float = 50.0, top: float = 1.0) -> np.ndarray:
    """An accuracy curve rising from 0 to ``top`` around epoch ``at`` (never if at is inf)."""
    return top / (1 + np.exp(-(EPOCHS - at) / (width / 8)))


def classify(train: np.ndarray, test: np.ndarray) -> str:
    mem, grok = t_mem(EPOCHS, train, 0.99), t_grok(EPOCHS, test, 0.99)
    return run_class(mem.epoch, grok.epoch, EPOCHS[-1])


def test_one_synthetic_run_per_class():
    assert classify(ramp(200), ramp(260)) == "comprehension"  # test follows train
    assert classify(ramp(200), ramp(3000)) == "grokking"  # long after
    assert classify(ramp(200), ramp(200, top=0.5)) == "memorisation"  # test stalls at 0.5
    assert classify(ramp(200, top=0.8), ramp(200, top=0.5)) == "confusion"  # train never fits


def test_thresholds_are_the_documented_ones():
    assert run_class(100, 199) == "comprehension"  # delay 99 < MIN_DELAY 100
    assert run_class(100, 200) == "grokking"  # delay 100 = max(100, 1.0 x 100)
    assert run_class(300, 599) == "comprehension" and run_class(300, 600) == "grokking"


def test_classes_column_of_a_table():
    table = pd.DataFrame({
        "status": ["done", "done", "censored", "censored", "failed"],
        "T_mem": [50, 50, 50, np.nan, np.nan],
        "T_grok": [80, 2000, np.nan, np.nan, np.nan],
    })  # fmt: skip
    assert run_classes(table).tolist() == [*CLASSES, ""]


def test_phase_diagram_colours_each_cell_by_its_most_common_class():
    from grokinterp.plots.sweep import phase_diagram

    table = pd.DataFrame({
        "frac_train": [0.3, 0.3, 0.6, 0.6, 0.6],
        "weight_decay": [1.0, 1.0, 1.0, 1.0, 1.0],
        "status": ["censored", "censored", "done", "done", "done"],
        "T_mem": [50, 50, 50, 50, 50],
        "T_grok": [np.nan, np.nan, 1000, 1200, 80],
    })  # fmt: skip
    table["run_class"] = run_classes(table)
    heat = phase_diagram(table, "frac_train", "weight_decay").data[0]
    assert list(heat.z[0]) == [CLASSES.index("memorisation"), CLASSES.index("grokking")]
    assert heat.text[0][1] == "grokking 2/3<br>delay 950"  # median of 950, 1150, 30
    assert heat.text[0][0] == "memorisation"
