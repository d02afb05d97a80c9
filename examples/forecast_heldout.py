"""The forecast's held-out benchmark (docs/forecast.md, "Held-out benchmark").

    grokinterp sweep examples/forecast-heldout-p113.toml          # -> sweeps/forecast-heldout-p113
    grokinterp sweep docs/results/wd-lr-p59-cleanup/spec.toml     # the p = 59 domain
    grokinterp sweep examples/forecast-heldout-p113-batch2.toml   # 6 more test runs
    python examples/forecast_heldout.py sweeps/forecast-heldout-p113 sweeps/wd-lr-p59-cleanup \\
        --batch2 sweeps/forecast-heldout-p113-batch2 \\
        --default-run checkpoints/add-p113-paper-init999-data598 --out docs/results/forecast-heldout

Domain p = 113: the shipped calibration (grokinterp.forecast.CALIBRATION, made from the
development runs, seeds 7101-7104, and the default run) forecasts the test runs (seeds
7105-7110, and the second batch's 7111-7116), each cut at f = 1/4, 1/3 and 1/2 of its
plateau.  The development runs are also scored leave one run out, for reference.

Domain p = 59: the runs with seeds 999/598 are its development set and calibrate it; the
runs with seeds 1/2 are its test set, forecast with that calibration and with the shipped
p = 113 one (does it transfer?).

Writes OUT/<part>.json (the evaluation of each part), OUT/<part>.png for the p = 113 test
runs and the p = 59 test parts (forecast against T_grok), OUT/cuts.csv (one row per cut)
and OUT/table.md (the summary table docs/forecast.md cites).
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

from grokinterp.figures.export import write_figure_files
from grokinterp.forecast import (
    CALIBRATION,
    FRACTIONS,
    calibrate_forecast,
    evaluate_forecast,
)
from grokinterp.plots.forecast import forecast_figure
from grokinterp.storage import atomic_write_text, write_json
from grokinterp.sweep.manifest import read_manifest, run_dir

DEV_113 = [f"init{7100 + i}-data{7200 + i}" for i in range(1, 5)]  # fixed before training
TEST_113 = [f"init{7100 + i}-data{7200 + i}" for i in range(5, 11)]


def _runs(sweep: Path, pick) -> list[Path]:
    return [run_dir(sweep, name) for name in read_manifest(sweep)["runs"] if pick(name)]


def _summary(part: str, evaluation: dict) -> list[str]:
    cells = []
    for f in FRACTIONS:
        key = f"{f:.4g}"
        err, cover = evaluation["median_rel_error"][key], evaluation["coverage"][key]
        done, not_yet = evaluation["n_forecast"][key], evaluation["n_not_yet"][key]
        shown = "-" if err is None else f"{err:.1%}"
        inside = "-" if cover is None else f"{round(cover * done)}/{done}"
        cells.append(f"{shown}, {inside} covered, {not_yet} not yet")
    return [f"| {part} | " + " | ".join(cells) + " |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("p113", type=Path, help="the forecast-heldout-p113 sweep")
    parser.add_argument("p59", type=Path, help="the wd-lr-p59-cleanup sweep")
    parser.add_argument("--default-run", type=Path, help="the default run (a development run)")
    parser.add_argument(
        "--batch2", type=Path, help="the forecast-heldout-p113-batch2 sweep (6 more test runs)"
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    parts = {}
    test = _runs(args.p113, lambda n: n in TEST_113)
    parts["p113-test"] = evaluate_forecast(test, FRACTIONS, calibration=CALIBRATION)
    if args.batch2:
        batch2 = _runs(args.batch2, lambda n: True)
        parts["p113-test-batch2"] = evaluate_forecast(batch2, FRACTIONS, calibration=CALIBRATION)
        parts["p113-test-both-batches"] = evaluate_forecast(
            test + batch2, FRACTIONS, calibration=CALIBRATION
        )
    dev = _runs(args.p113, lambda n: n in DEV_113)
    dev += [args.default_run] if args.default_run else []
    parts["p113-dev-leave-one-run-out"] = evaluate_forecast(dev, FRACTIONS, leave_out="run")
    dev59 = _runs(args.p59, lambda n: n.endswith("init999-data598"))
    test59 = _runs(args.p59, lambda n: n.endswith("init1-data2"))
    own = calibrate_forecast(dev59, FRACTIONS)
    write_json(args.out / "p59-calibration.json", own.to_dict())
    parts["p59-test-own-calibration"] = evaluate_forecast(test59, FRACTIONS, calibration=own)
    parts["p59-test-p113-calibration"] = evaluate_forecast(
        test59, FRACTIONS, calibration=CALIBRATION
    )
    parts["p59-dev-leave-one-run-out"] = evaluate_forecast(dev59, FRACTIONS, leave_out="run")
    rows = []
    last = "p113-test-both-batches" if args.batch2 else "p113-test"
    shown = {last, "p59-test-own-calibration", "p59-test-p113-calibration"}
    for part, evaluation in parts.items():
        write_json(args.out / f"{part}.json", evaluation)
        if part in shown:  # the figures docs/forecast.md shows
            write_figure_files({part: forecast_figure(evaluation)}, args.out, ("png",))
        for r in evaluation["runs"]:
            rows.append({"part": part, **{k: r.get(k) for k in COLUMNS[1:]}})
    lines = ["| part | f = 1/4 | f = 1/3 | f = 1/2 |", "|---|---|---|---|"]
    for part, evaluation in parts.items():
        lines += _summary(part, evaluation)
    lines.append("")
    lines.append("Each cell: median |forecast - T_grok| / T_grok over the cuts with a forecast,")
    lines.append("how many of their 90% intervals hold T_grok, and the cuts answered 'not yet'.")
    atomic_write_text(args.out / "table.md", "\n".join(lines) + "\n")
    table = io.StringIO()
    writer = csv.DictWriter(table, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(args.out / "cuts.csv", table.getvalue())
    print("\n".join(lines))


COLUMNS = [
    "part", "run", "fraction", "T_mem", "T_grok", "upto", "status", "forecast", "low", "high",
    "rel_error", "inside", "restricted_estimate", "test_loss_estimate", "restricted_weight",
    "error",
]  # fmt: skip

if __name__ == "__main__":
    main()
