"""The R^2 ceiling the seed-to-seed spread sets, on values with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from grokinterp.seed_spread import r2_ceiling, setting_spread


def test_ceiling_is_one_minus_within_over_total():
    rng = np.random.default_rng(0)
    means = np.repeat([1.0, 2.0, 4.0], 50)
    noise = rng.normal(0, 0.5, 150)
    y = means + noise
    out = r2_ceiling(y, np.repeat([0, 1, 2], 50))
    within = sum(((y[i : i + 50] - y[i : i + 50].mean()) ** 2).sum() for i in (0, 50, 100))
    assert out["ceiling"] == pytest.approx(1 - within / ((y - y.mean()) ** 2).sum())
    assert 0.8 < out["ceiling"] < 0.95  # signal var 1.56 against noise var 0.25


def test_ceiling_is_one_without_spread_and_drops_singletons():
    out = r2_ceiling([1.0, 1.0, 3.0, 3.0, 9.0, np.nan], ["a", "a", "b", "b", "c", "c"])
    assert out["ceiling"] == 1.0 and out["n_runs"] == 4 and out["n_settings"] == 2
    assert r2_ceiling([1.0, 2.0], ["a", "a"])["ceiling"] is None  # one setting: no ceiling


def test_setting_spread():
    table = setting_spread([100.0, 400.0, np.nan, 50.0], ["x", "x", "x", "y"])
    x = table.set_index("setting").loc["x"]
    assert x["n_grokked"] == 2 and x["max_over_min"] == 4.0
    assert x["sd_log_delay"] == pytest.approx(np.log(4) / np.sqrt(2))
