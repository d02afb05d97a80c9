"""The tidy table (``analysis.csv``): building it from row blocks, its order, reading it,
and the cache that decides which stored rows a new analysis may keep."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from grokinterp import files
from grokinterp.analysis.registry import ANALYSES
from grokinterp.run import Run
from grokinterp.storage import RunFileError, read_json

log = logging.getLogger(__name__)

ANALYSIS_VERSION = 1
COLUMNS = ("epoch", "measure", "key", "value")


def frame(blocks: list) -> pd.DataFrame:
    if not blocks:
        return pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in zip(COLUMNS, (int, str, str, float), strict=True)}
        )
    return pd.DataFrame(
        {
            "epoch": np.concatenate([b[0] for b in blocks]).astype(int),
            "measure": np.concatenate([[b[1]] * len(b[0]) for b in blocks]).astype(object),
            "key": np.concatenate([[b[2]] * len(b[0]) for b in blocks]).astype(object),
            "value": np.concatenate([b[3] for b in blocks]).astype(float),
        }
    )


def sorted_rows(table: pd.DataFrame) -> pd.DataFrame:
    order = {name: i for i, name in enumerate(ANALYSES)}
    keys = table["key"].astype(str)
    digit = keys.str.fullmatch(r"\d+")
    helper = pd.DataFrame(
        {
            "epoch": table["epoch"].to_numpy(),
            "m": table["measure"].map(lambda m: order.get(m, len(order))).to_numpy(),
            "d": digit.to_numpy().astype(int),
            "n": np.where(digit, pd.to_numeric(keys.where(digit, "0")), 0),
            "k": keys.where(~digit, "").to_numpy(),
            "measure": table["measure"].to_numpy(),
        }
    )
    idx = helper.sort_values(["epoch", "m", "measure", "d", "n", "k"], kind="stable").index
    return table.loc[idx].reset_index(drop=True)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read an analysis.csv (a file or a run directory), keeping the ``""`` keys as strings."""
    path = Path(path)
    if path.is_dir():
        path = path / files.ANALYSIS_TABLE
    if not path.is_file():
        raise RunFileError(f"{path}: file not found; run 'grokinterp analyze' first")
    try:
        table = pd.read_csv(
            path,
            dtype={"epoch": int, "measure": str, "key": str, "value": float},
            keep_default_na=False,
            na_values={"value": ["", "nan", "NaN"]},
        )
    except (ValueError, pd.errors.ParserError) as err:
        raise RunFileError(f"{path}: not a grokinterp analysis table: {err}") from None
    if tuple(table.columns) != COLUMNS:
        raise RunFileError(f"{path}: columns {list(table.columns)}, expected {list(COLUMNS)}")
    return table


def previous_analysis(run: Run) -> tuple[pd.DataFrame | None, dict]:
    table_path, summary_path = run.path / files.ANALYSIS_TABLE, run.path / files.SUMMARY
    if not table_path.is_file() or not summary_path.is_file():
        return None, {}
    try:
        return read_table(table_path), read_json(summary_path).get("settings", {})
    except RunFileError as err:
        log.warning("ignoring the previous analysis (%s); recomputing everything", err)
        return None, {}


def reusable_rows(old: pd.DataFrame, previous: dict, settings: dict, epochs) -> pd.DataFrame:
    """The stored rows a new analysis may keep: the cache rule.

    Nothing is kept when the table version or the run config changed.  Otherwise a
    measure's rows are kept, at the checkpoints that still exist, only if the measure is
    still registered, its code fingerprint (:attr:`Analysis.fingerprint`, stored in
    ``settings["measure_fingerprints"]``) is unchanged, and the settings it depends on
    (threshold, key frequencies) are the same.  A measure with an edited compute function,
    or one edited function it calls, is thus recomputed at every checkpoint.
    """
    if (
        previous.get("analysis_version") != settings["analysis_version"]
        or previous.get("config") != settings["config"]
    ):
        log.info("previous analysis has other settings; recomputing everything")
        return old.iloc[:0]
    same_threshold = previous.get("threshold") == settings["threshold"]
    same_keys = previous.get("key_freqs_used") == settings["key_freqs_used"]
    same_llc = previous.get("llc") == settings.get("llc")
    old_prints = previous.get("measure_fingerprints") or {}
    new_prints = settings["measure_fingerprints"]
    valid = old["epoch"].isin(list(epochs))
    for name in old["measure"].unique():
        a = ANALYSES.get(name)
        why = (
            "it is no longer registered"
            if a is None
            else "its code changed"
            if old_prints.get(name) != new_prints.get(name)
            else "its threshold changed"
            if a.uses_threshold and not same_threshold
            else "its key frequencies changed"
            if a.uses_key_freqs and not same_keys
            else "its llc settings changed"
            if a.uses_llc_settings and not same_llc
            else None
        )
        if why is not None:
            valid &= old["measure"] != name
            log.info("recomputing %s at every checkpoint: %s", name, why)
    return old[valid]
