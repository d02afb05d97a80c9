"""The numbers of experiment (p) (docs/experiments.md): per task and pooled, the run counts
and classes, laws (a) and (b) with bootstrap CIs and R^2, the seed spread and the R^2
ceiling it sets, from the tables of runs of the three study sweeps.

    python examples/mlp_study.py docs/results/mlp-add-p31/runs.csv \
        docs/results/mlp-mul-p31/runs.csv docs/results/mlp-parity/runs.csv \
        --out docs/results/mlp-study

(or the sweep folders' runs.csv).  Writes study.json, laws-pooled.json and spread.csv.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from grokinterp.laws import LawFitError, fit_laws, law_points
from grokinterp.seed_spread import r2_ceiling, setting_spread

NORMS = ("T_mem", "T_grok")  # the mlp has no circuit phases: its norms are read at these


def law_summary(fit, law):
    e = fit[law]
    if not e.get("ok"):
        return {"ok": False, "reason": e.get("reason")}
    keys = ("slope", "slope_ci", "intercept", "intercept_ci", "r2", "n_fitted")
    return {k: e.get(k) for k in (*keys, "predicted_slope_in_ci")}


def analyse(table, setting_cols):
    pts = law_points(table, NORMS)
    setting = [tuple(r) for r in table[setting_cols].itertuples(index=False)]
    res = {
        "runs": len(table),
        "finished": int(table["status"].isin(["done", "censored"]).sum()),
        "grokked": int((pts["role"] == "grokked").sum()),
        "censored": int((pts["role"] == "censored").sum()),
        "failed": int((pts["role"] == "failed").sum()),
        "classes": table["run_class"].value_counts().to_dict(),
    }
    fit = None
    try:
        fit = fit_laws(table, norms=NORMS)
        res["law_a"], res["law_b"] = law_summary(fit, "law_a"), law_summary(fit, "law_b")
    except LawFitError as err:
        res["law_error"] = str(err)
    delay = np.where(pts["role"].to_numpy() == "grokked", pts["delay"].to_numpy(), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        res["ceiling_a"] = r2_ceiling(np.log(delay), setting)
    res["ceiling_b"] = r2_ceiling(delay, setting)
    spread = setting_spread(delay, setting)
    res["spread"] = {
        "settings_with_2plus": int((spread["n_grokked"] >= 2).sum()),
        "max_over_min_median": float(spread["max_over_min"].median()),
        "max_over_min_max": float(spread["max_over_min"].max()),
        "sd_log_delay_median": float(spread["sd_log_delay"].median()),
    }
    wall = pd.to_numeric(table["wall_s"], errors="coerce")[
        table["status"].isin(["done", "censored"])
    ]
    res["wall_s_mean"] = float(wall.mean())
    res["runs_per_hour_one_core"] = float(3600 / wall.mean())
    return res, fit, spread


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("tables", nargs="+", help="runs.csv of each task's sweep")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    out, tables, spreads = {"norms": list(NORMS), "tasks": {}}, [], []
    for path in args.tables:
        table = pd.read_csv(path)
        task = (
            table["dataset"].iloc[0]
            if table["dataset"].iloc[0] != "modular"
            else table["operation"].iloc[0]
        )
        table["task"] = task
        tables.append(table)
        out["tasks"][task], _, spread = analyse(table, ["lr", "weight_decay"])
        spreads.append(spread.assign(task=task))
    pooled = pd.concat(tables, ignore_index=True)
    out["pooled"], fit, _ = analyse(pooled, ["task", "lr", "weight_decay"])
    if fit is not None:
        (out_dir / "laws-pooled.json").write_text(json.dumps(fit, indent=1, allow_nan=False) + "\n")
    pd.concat(spreads).to_csv(out_dir / "spread.csv", index=False)
    (out_dir / "study.json").write_text(json.dumps(out, indent=1, default=str) + "\n")
    print(
        json.dumps(
            {
                k: {kk: v.get(kk) for kk in ("runs", "grokked", "censored")}
                for k, v in [*out["tasks"].items(), ("pooled", out["pooled"])]
            }
        )
    )


if __name__ == "__main__":
    main()
