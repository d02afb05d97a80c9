"""``grokinterp bench sweep``: runs per hour of one small fixed sweep, three ways.

1. one run at a time, each with the default torch threads (all cores): a pool of one
   worker process (what running ``grokinterp train`` per run in turn gives);
2. the local pool, ``cores`` workers of one thread (the sweep's default);
3. Ray, one task of one CPU per run, on a local Ray started for it (its start-up counted).

Each way runs the same spec into its own temporary folder; wall time is from the call to
the last result.  The machine's load average is reported with the numbers, since other
processes on the machine slow every way down.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from grokinterp.sweep.backends import LocalBackend, available_cores
from grokinterp.sweep.coordinator import run_sweep
from grokinterp.sweep.manifest import read_manifest

__all__ = ["BENCH_SPEC", "bench_sweep", "format_bench_sweep"]

# Six short runs at p = 31 with the paper's model sizes: 2 weight decays x 3 seeds,
# 1,500 epochs each (none groks that early; the point is the throughput of training and
# analysis, not the science).
BENCH_SPEC = """\
name = "bench"
seeds = [[999, 598], [1, 2], [3, 4]]

[base]
p = 31
epochs = 1500
eval_every = 10
checkpoints = "every:250"

[grid]
weight_decay = [1.0, 2.0]
"""


def _time_sweep(spec: Path, out: Path, threads: int, backend) -> dict:
    start = time.perf_counter()
    run_sweep(spec, out, threads=threads, backend=backend)
    wall = time.perf_counter() - start
    runs = read_manifest(out)["runs"]
    statuses = sorted({r["status"] for r in runs.values()})
    return {
        "runs": len(runs),
        "wall_s": wall,
        "runs_per_hour": len(runs) / wall * 3600,
        "statuses": statuses,
    }


def bench_sweep(
    ray: bool = True,
    ensemble: bool = True,
    spec_text: str = BENCH_SPEC,
    workdir: str | Path | None = None,
) -> dict:
    """Runs per hour of ``spec_text`` one at a time, on the local pool and (``ray``) on a
    local Ray; with ``ensemble``, also :func:`grokinterp.bench.ensemble.bench_ensemble`.
    """
    cores = available_cores()
    result: dict = {"cores": cores, "load_before": os.getloadavg(), "ways": {}}
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        spec = Path(tmp) / "bench.toml"
        spec.write_text(spec_text)
        ways = {
            "one at a time": (cores, LocalBackend(workers=1)),
            "local pool": (1, LocalBackend()),
        }
        if ray:
            from grokinterp.sweep.ray_backend import RayBackend

            ways["ray"] = (1, RayBackend(num_cpus=cores))
        for i, (way, (threads, backend)) in enumerate(ways.items()):
            timing = _time_sweep(spec, Path(tmp) / f"way{i}", threads, backend)
            result["ways"][way] = {"threads": threads, **timing}
    if ensemble:
        from grokinterp.bench.ensemble import bench_ensemble

        result["ensemble"] = bench_ensemble()
    result["load_after"] = os.getloadavg()
    return result


def format_bench_sweep(result: dict) -> str:
    ways = result["ways"]
    base = ways["one at a time"]["runs_per_hour"]
    lines = [
        f"sweep benchmark: {next(iter(ways.values()))['runs']} runs (p=31, 1500 epochs each), "
        f"{result['cores']} cores; load average before "
        + "/".join(f"{x:.1f}" for x in result["load_before"])
        + ", after "
        + "/".join(f"{x:.1f}" for x in result["load_after"]),
    ]
    for way, w in ways.items():
        lines.append(
            f"  {way:<14} ({w['threads']} thread(s) per run): {w['wall_s']:8.1f} s, "
            f"{w['runs_per_hour']:7.1f} runs/hour, {w['runs_per_hour'] / base:5.2f}x "
            f"one at a time ({', '.join(w['statuses'])})"
        )
    if "ensemble" in result:
        from grokinterp.bench.ensemble import format_bench_ensemble

        lines.append(format_bench_ensemble(result["ensemble"]))
    return "\n".join(lines)
