"""The ``grokinterp`` command line: parse into a config, call the library, print.

grokinterp train [--config FILE] [--p 113 ...] [--out DIR] [--resume RUN_DIR]
grokinterp analyze PATH [...]
grokinterp figures PATH [...]
grokinterp watch RUN [--interval S] [--once]
grokinterp forecast RUN [--upto EPOCH] [--calibration FILE] | forecast PATH --evaluate
    [--leave-out run|setting] | forecast PATH --calibrate

grokinterp sweep SPEC.toml [--out DIR] [--threads N] [--workers N] [--retry-failed]
grokinterp laws SWEEP_DIR [--bootstrap N] [--seed S] [--norms MEM,POST] [--formats ...]
grokinterp bench train|analyze|watch|sweep|ensemble|sharpness|stacked
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import MISSING, fields
from pathlib import Path

from grokinterp.config import RunConfig
from grokinterp.errors import ConfigError, OptionError, RunExistsError, RunFileError
from grokinterp.sweep.manifest import SweepLockedError

DEFAULT_ROOT = Path("checkpoints")

_FIELD_HELP = {
    "p": "modulus (odd; prime for mul and div)",
    "operation": "task: add, sub, mul, div, x2xyy2, x3xy or rand (docs/tasks.md)",
    "frac_train": "fraction of the task's valid pairs used for training, in (0, 1)",
    "data_seed": "seed of the train/test split",
    "init_seed": "seed of the model initialisation",
    "init": "initialisation: paper (Nanda et al., default), tl-demo (legacy TL) or native (TL 4)",
    "init_scale": "factor on every initial weight",
    "biases": "'mlp' (paper: MLP biases trained, attention biases 0) or 'none' (all 0)",
    "loss_dtype": "float64 or float32",
    "fast_path": "train with the last-position fast forward (--no-fast-path: plain TL forward)",
    "eval_every": "epochs between test-loss/accuracy evaluations",
    "epochs": "epochs to train: the cap, reached unless stop_after_grok ends the run first",
    "stop_after_grok": "N > 0: stop N epochs after T_grok (first eval epoch with test acc >= "
    "0.99), with a final checkpoint there; 0: off",
    "stop_after_grok_delays": "F > 0: run on at least F x (T_grok - T_mem) epochs after T_grok, "
    "so cleanup is seen (docs/phases.md); 0: off",
    "checkpoints": "schedule: default | every:N | log:N | list:E1,E2 | A+B",
    "name": "run name (default: derived from the task and seeds)",
}


def _add_llc_options(parser: argparse.ArgumentParser) -> None:
    """--llc-lr, --llc-nbeta, ...: the opt-in llc measure's SGLD settings (docs/measures.md)."""
    from dataclasses import fields as dc_fields

    from grokinterp.measures.llc import LLCSettings

    group = parser.add_argument_group("llc measure (opt-in: --measures default,llc)")
    for f in dc_fields(LLCSettings):
        kind = {"int": int, "float": float}[f.type]
        group.add_argument(
            f"--llc-{f.name.replace('_', '-')}", dest=f"llc_{f.name}", type=kind, default=None,
            help=f"SGLD {f.name} (default {f.default!r})",
        )  # fmt: skip


class CliError(Exception):
    """A user error: printed as one line, exit code 2."""


def _add_config_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run configuration (defaults: Nanda et al. 2023)")
    for f in fields(RunConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        help_text = f"{_FIELD_HELP.get(f.name, f.name.replace('_', ' '))} (default {default!r})"
        if f.type == "bool":
            group.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=help_text,
            )
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            group.add_argument(flag, dest=f.name, type=kind, default=None, help=help_text)


def _add_toy_options(parser: argparse.ArgumentParser) -> None:
    """The fields of a toy run that a transformer run does not have (docs/toys.md)."""
    from grokinterp.models.config import ToyConfig

    group = parser.add_argument_group("toy model families (need a config with a family)")
    known = {f.name for f in fields(RunConfig)}
    for f in fields(ToyConfig):
        if f.name in known:
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            group.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction)
        else:
            kind = {"int": int, "float": float, "str": str}[f.type]
            group.add_argument(flag, dest=f.name, type=kind, default=None,
                               help=f"{f.name} (default {f.default!r})")  # fmt: skip


def _toy_overrides(args: argparse.Namespace) -> dict:
    from grokinterp.models.config import ToyConfig

    known = {f.name for f in fields(RunConfig)}
    return {
        f.name: getattr(args, f.name)
        for f in fields(ToyConfig)
        if f.name not in known and getattr(args, f.name, None) is not None
    }


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """--config file first, then any field given on the command line overrides it."""
    base: dict = {}
    if args.config:
        path = Path(args.config)
        try:
            base = json.loads(path.read_text())
        except FileNotFoundError:
            raise CliError(f"--config {path}: file not found") from None
        except json.JSONDecodeError as err:
            raise CliError(f"--config {path}: not valid JSON: {err}") from None
    overrides = {
        f.name: getattr(args, f.name)
        for f in fields(RunConfig)
        if getattr(args, f.name) is not None
    }
    toy = _toy_overrides(args)
    if isinstance(base, dict) and "family" in base or "family" in toy:  # docs/toys.md
        from grokinterp.models.config import config_from_dict

        return config_from_dict({**base, **overrides, **toy})
    if toy:
        raise CliError(
            f"{['--' + k.replace('_', '-') for k in toy]} are toy-model options; give "
            f"--family (or a --config with a family) to train a toy model"
        )
    return RunConfig.from_dict({**base, **overrides})


def _cmd_train(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from grokinterp.training import train

    if args.resume:
        given = {f.name for f in fields(RunConfig) if getattr(args, f.name) is not None}
        given |= set(_toy_overrides(args))
        if given or args.config:
            raise CliError("--resume continues a run as configured; drop the config options")
        cfg, out = None, Path(args.resume)
        from grokinterp import files
        from grokinterp.run import read_config

        if not (out / files.CONFIG).is_file():
            raise CliError(f"--resume {out}: no run to resume there (no {files.CONFIG})")
        total = read_config(out).epochs
    else:
        cfg = config_from_args(args)
        out = Path(args.out) if args.out else DEFAULT_ROOT / cfg.run_name
        total = cfg.epochs

    bar = None
    last = {}

    def on_epoch(row: dict) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(
                total=total + 1,
                initial=row["epoch"],
                unit="epoch",
                dynamic_ncols=True,
                desc=out.name,
                disable=args.quiet,
                mininterval=0.5,
            )
        if row.get("test_loss") is not None:
            last.update(test=row["test_loss"], acc=row["test_acc"])
        bar.set_postfix(
            train=f"{row['train_loss']:.3g}",
            test=f"{last.get('test', float('nan')):.3g}",
            test_acc=f"{last.get('acc', float('nan')):.3f}",
            refresh=False,
        )
        bar.update(1)

    print(f"{'resuming' if args.resume else 'training'} {out}")
    try:
        run = train(cfg, out, resume=bool(args.resume), device=args.device, on_epoch=on_epoch)
    finally:
        if bar is not None:
            bar.close()
    metrics = run.metrics
    print(
        f"done: {len(run.epochs)} checkpoints in {run.path}; final train loss "
        f"{metrics['train_loss'][-1]:.3g}, test loss {metrics['test_loss'][-1]:.3g}, "
        f"test acc {metrics['test_acc'][-1]:.3f}"
    )
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.what == "ridge":
        from grokinterp.bench.ridge import bench_ridge, format_bench_ridge
        from grokinterp.models.config import ToyConfig

        print(format_bench_ridge(bench_ridge(ToyConfig(epochs=args.epochs or 5000))))
        return 0
    if args.what == "sweep":
        from grokinterp.bench.sweep import bench_sweep, format_bench_sweep

        print(format_bench_sweep(bench_sweep(ray=not args.no_ray)))
        return 0
    if args.what == "stacked":
        from grokinterp.bench.stacked import STUDY_MLP, bench_stacked, format_bench_stacked

        base = STUDY_MLP.replace(epochs=args.epochs or STUDY_MLP.epochs)
        print(format_bench_stacked(bench_stacked(base)))
        return 0
    if args.what == "ensemble":
        from grokinterp.bench.ensemble import bench_ensemble, format_bench_ensemble

        print(format_bench_ensemble(bench_ensemble(n_epochs=args.epochs or 20)))
        return 0
    if args.what == "train":
        from grokinterp.bench import bench_train, format_bench_train

        print(format_bench_train(bench_train(n_epochs=args.epochs or 100)))
        return 0
    if args.what == "sharpness":
        from grokinterp.bench import bench_sharpness, format_bench_sharpness

        cfg = RunConfig() if args.p is None else RunConfig(p=args.p)
        print(format_bench_sharpness(bench_sharpness(cfg, n_checkpoints=args.checkpoints or 2)))
        return 0
    if args.what == "watch":
        from grokinterp.bench import bench_watch, format_bench_watch

        cfg = RunConfig() if args.p is None else RunConfig(p=args.p)
        print(format_bench_watch(bench_watch(cfg, n_checkpoints=args.checkpoints or 32)))
        return 0
    from grokinterp.bench import bench_analyze, format_bench_analyze

    print(format_bench_analyze(bench_analyze(args.run, n_checkpoints=args.checkpoints or 32)))
    return 0


def _parse_freqs(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(k) for k in text.split(",") if k.strip()]
    except ValueError:
        raise CliError(
            f"--key-freqs {text!r}: expected comma-separated integers, e.g. 14,35,41"
        ) from None


def _fmt_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _make_backend(args: argparse.Namespace):
    if args.backend == "local":
        if args.address:
            raise CliError("--address is for --backend ray")
        from grokinterp.sweep import LocalBackend

        return LocalBackend(args.workers)
    if args.workers is not None:
        raise CliError("--workers is for --backend local (Ray schedules by --threads)")
    try:  # the Ray backend is an optional extra: pip install 'grokinterp[ray]'
        from grokinterp.sweep.ray_backend import RayBackend
    except ImportError as err:
        raise CliError(f"--backend ray needs Ray: pip install 'grokinterp[ray]' ({err})") from None
    return RayBackend(args.address)


def _cmd_sweep(args: argparse.Namespace) -> int:
    from grokinterp.sweep import run_sweep

    if args.threads < 1:
        raise CliError(f"--threads must be >= 1, got {args.threads}")
    if args.workers is not None and args.workers < 1:
        raise CliError(f"--workers must be >= 1, got {args.workers}")
    backend = _make_backend(args)
    live = sys.stdout.isatty() and not args.quiet  # a status line rewritten in place
    shown = {"width": 0}

    def status_line(state) -> str:
        c = state.counts
        return (
            f"[{_fmt_seconds(state.elapsed_s)}] {c['done'] + c['censored']}/{state.total} "
            f"finished (done {c['done']}, censored {c['censored']}, failed {c['failed']}), "
            f"{len(state.running)} running, ETA {_fmt_seconds(state.eta_s)}"
        )

    def on_update(state) -> None:
        last = state.last
        if live:
            print("\r" + " " * shown["width"] + "\r", end="")
        if last is not None:
            detail = last.get("error") or (
                f"T_grok {last.get('T_grok')}" if last["status"] == "done" else "did not grok"
            )
            wall = last.get("wall_s")
            took = f" in {_fmt_seconds(wall)}" if wall is not None and wall == wall else ""
            print(f"{last['status']:>8} {last['name']}{took}: {detail}")
            if not live and not args.quiet:
                print(f"         {status_line(state)}", flush=True)
        if live:
            line = status_line(state)
            print(line, end="", flush=True)
            shown["width"] = len(line)

    sweep_dir = run_sweep(
        args.spec,
        args.out,
        threads=args.threads,
        backend=backend,
        retry_failed=args.retry_failed,
        on_update=on_update,
    )
    if live:
        print()
    from grokinterp.sweep import write_runs_table

    path, table = write_runs_table(sweep_dir)
    counts = table["status"].value_counts().to_dict()
    print(f"sweep {sweep_dir}: {counts}; table of runs in {path}")
    if counts.get("failed"):
        print("some runs failed (see the error column); rerun with --retry-failed")
        return 1
    return 0


def _llc_settings(args: argparse.Namespace):
    """The llc measure's SGLD settings: LLCSettings' defaults, overridden by --llc-* flags."""
    from dataclasses import fields as dc_fields

    from grokinterp.measures.llc import LLCSettings

    given = {
        f.name: getattr(args, f"llc_{f.name}")
        for f in dc_fields(LLCSettings)
        if getattr(args, f"llc_{f.name}", None) is not None
    }
    return LLCSettings(**given)


def _cmd_analyze(args: argparse.Namespace) -> int:
    from grokinterp.analysis import analyze_path, format_summary
    from grokinterp.sweep import is_sweep

    if is_sweep(args.path):
        from grokinterp.sweep import write_runs_table

        path, table = write_runs_table(args.path)
        counts = table["status"].value_counts().to_dict()
        print(f"{len(table)} runs {counts}: wrote {path}")
        return 0

    measures = args.measures.split(",") if args.measures else None
    summaries = analyze_path(
        args.path,
        measures=measures,
        threshold=args.threshold,
        acc_threshold=args.acc_threshold,
        key_freqs=_parse_freqs(args.key_freqs),
        progress=not args.quiet,
        sharpness_every=args.sharpness_every,
        llc=_llc_settings(args),
    )
    for run_dir, summary in summaries.items():
        print(f"\n{run_dir}")
        print(format_summary(summary))
    return 0


def _cmd_figures(args: argparse.Namespace) -> int:
    from grokinterp import files
    from grokinterp.figures import write_figures, write_sweep_figures
    from grokinterp.run import find_runs
    from grokinterp.sweep import is_sweep

    if is_sweep(args.path):
        written = write_sweep_figures(
            args.path, formats=tuple(args.formats.split(",")), color_by=args.color_by
        )
        report = [p for p in written if p.name == files.REPORT]
        print(f"{args.path}: wrote {len(written)} files in {Path(args.path) / files.FIGURES_DIR}")
        if report:
            print(f"  open {report[0].resolve().as_uri()}")
        return 0

    runs = find_runs(args.path)
    formats = tuple(args.formats.split(","))
    for run_dir in runs:
        written = write_figures(run_dir, formats=formats)
        report = [p for p in written if p.name == files.REPORT]
        print(f"{run_dir}: wrote {len(written)} files in {run_dir / files.FIGURES_DIR}")
        if report:
            print(f"  open {report[0].resolve().as_uri()}")
    return 0


def _parse_fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(f) for f in text.split(",") if f.strip())
    except ValueError:
        raise CliError(
            f"--fractions {text!r}: expected comma-separated numbers in (0, 1)"
        ) from None


def _cmd_forecast(args: argparse.Namespace) -> int:
    from grokinterp import files
    from grokinterp.figures import write_evaluation
    from grokinterp.forecast import (
        CALIBRATION,
        FRACTIONS,
        Calibration,
        calibrate_forecast,
        evaluate_forecast,
        forecast_or_not_yet,
    )
    from grokinterp.storage import write_json

    modes = [m for m in ("evaluate", "calibrate") if getattr(args, m)]
    if len(modes) > 1:
        raise CliError("--evaluate and --calibrate are separate steps; give one")
    calibration = Calibration.read(args.calibration) if args.calibration else CALIBRATION
    if not modes:
        if args.out or args.fractions or args.leave_out:
            raise CliError("--out, --fractions and --leave-out go with --evaluate or --calibrate")
        found = forecast_or_not_yet(args.path, upto=args.upto, calibration=calibration)
        print(f"{args.path}: {found}")
        if args.json:
            print(json.dumps(found.to_dict(), indent=1))
        return 2 if found.status == "not yet" else 0
    if args.upto is not None:
        raise CliError(f"--upto is for one run; --{modes[0]} cuts every run itself")
    fractions = _parse_fractions(args.fractions) if args.fractions else FRACTIONS
    out = Path(args.out) if args.out else Path(args.path)
    if args.calibrate:
        if args.leave_out or args.calibration:
            raise CliError("--leave-out and --calibration go with --evaluate")
        found = calibrate_forecast(args.path, fractions=fractions)
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / files.FORECAST_CALIBRATION, found.to_dict())
        model = found.model()
        print(
            f"{len(found.cuts)} cuts of {found.n_runs} runs: k restricted "
            f"{model.k['restricted']:.3f}, k test loss {model.k['test_loss']:.3f}; mean squared "
            f"log error {model.sq_error['restricted']:.4f} and {model.sq_error['test_loss']:.4f}"
        )
        if found.note:
            print(f"warning: {found.note}")
        print(
            f"wrote {out / files.FORECAST_CALIBRATION}; use it with 'grokinterp forecast RUN "
            f"--calibration {out / files.FORECAST_CALIBRATION}'"
        )
        return 0
    if args.leave_out and args.calibration:
        raise CliError("--leave-out calibrates on the other runs; it takes no --calibration")
    evaluation = evaluate_forecast(
        args.path, fractions=fractions, calibration=calibration, leave_out=args.leave_out
    )
    written = write_evaluation(evaluation, out, formats=tuple(args.formats.split(",")))
    for row in evaluation["runs"]:
        if row.get("forecast") is None:
            print(f"  {row['run']} f={row['fraction']:.3g}: not yet ({row.get('error')})")
            continue
        print(
            f"  {row['run']} f={row['fraction']:.3g} (upto {row['upto']}): forecast "
            f"{row['forecast']:.0f} [{row['low']:.0f}, {row['high']:.0f}], T_grok "
            f"{row['T_grok']}, error {row['rel_error']:.0%}"
        )
    for skip in evaluation["skipped"]:
        print(f"  skipped {skip['run']}: {skip['why']}")
    for f, err in evaluation["median_rel_error"].items():
        shown = "-" if err is None else f"{err:.1%}"
        cover = evaluation["coverage"][f]
        inside = "-" if cover is None else f"{cover:.0%}"
        print(
            f"median relative error at f = {f}: {shown} (T_grok inside the interval: {inside}; "
            f"{evaluation['n_forecast'][f]} forecasts, {evaluation['n_not_yet'][f]} not yet)"
        )
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _cmd_laws(args: argparse.Namespace) -> int:
    from grokinterp import files
    from grokinterp.figures import write_laws
    from grokinterp.laws import format_laws

    norms = tuple(n.strip() for n in args.norms.split(","))
    fit, written = write_laws(
        args.sweep_dir,
        n_boot=args.bootstrap,
        seed=args.seed,
        norms=norms,
        formats=[f.strip() for f in args.formats.split(",")],
    )
    print(format_laws(fit))
    if args.compare:  # (docs/toys.md) one figure of delay against 1/(decay per step)
        from grokinterp.figures import write_comparison

        others = [p.strip() for p in args.compare.split(",") if p.strip()]
        written += write_comparison(
            args.sweep_dir, others, formats=[f.strip() for f in args.formats.split(",")]
        )
    figures = [p for p in written if p.parent.name == files.FIGURES_DIR]
    folder = written[0].parent / files.FIGURES_DIR
    print(f"wrote {written[0]} and {len(figures)} figure files in {folder}")
    return 0


def _cmd_watch(args: argparse.Namespace) -> int:
    """Ctrl-C is how a watch ends: one line on stderr and exit code 0, never a traceback."""
    run_dir = Path(args.run)
    shown = []

    def show(event) -> None:
        print(event.message, flush=True)
        if event.report is not None and not shown:
            shown.append(event.report)
            print(f"  open {event.report.resolve().as_uri()}", flush=True)

    try:
        from grokinterp.watch import watch

        watch(
            run_dir,
            interval=args.interval,
            once=args.once,
            on_update=show,
            forecast=not args.no_forecast,
        )
    except KeyboardInterrupt:
        print(f"stopped watching {run_dir}", file=sys.stderr, flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grokinterp", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p_train = sub.add_parser("train", help="train a run (or resume one)")
    p_train.add_argument("--config", help="JSON file of RunConfig fields; options override it")
    p_train.add_argument("--out", help="run directory (default checkpoints/<run-name>/)")
    p_train.add_argument("--resume", metavar="RUN_DIR", help="continue a killed run")
    p_train.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p_train.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_config_options(p_train)
    _add_toy_options(p_train)
    p_train.set_defaults(func=_cmd_train)

    # the analysis defaults, defined once (AnalysisSettings)
    from grokinterp.analysis.options import DEFAULT_SHARPNESS_EVERY
    from grokinterp.measures.keyfreq import NEURON_THRESHOLD
    from grokinterp.phases import ACC_THRESHOLD

    p_analyze = sub.add_parser("analyze", help="progress measures for every checkpoint")
    p_analyze.add_argument(
        "path", help="a run directory, a folder of run directories, or a sweep folder (runs.csv)"
    )
    p_analyze.add_argument(
        "--measures",
        help="comma-separated table measures (default: all but the opt-in sharpness); "
        "'default,sharpness' adds sharpness",
    )
    p_analyze.add_argument(
        "--sharpness-every",
        type=int,
        default=DEFAULT_SHARPNESS_EVERY,
        metavar="N",
        help="sharpness at every Nth checkpoint, the last and the phase boundaries (default 200)",
    )
    _add_llc_options(p_analyze)
    p_analyze.add_argument(
        "--threshold",
        type=float,
        default=NEURON_THRESHOLD,
        help="fraction of a neuron's variance its frequency must explain",
    )
    p_analyze.add_argument(
        "--acc-threshold",
        type=float,
        default=ACC_THRESHOLD,
        help="accuracy that defines T_mem and T_grok",
    )
    p_analyze.add_argument("--key-freqs", help="fix the key frequencies, e.g. 14,35,41,42,52")
    p_analyze.add_argument("--quiet", action="store_true", help="no progress bar")
    p_analyze.set_defaults(func=_cmd_analyze)

    p_figures = sub.add_parser("figures", help="figures and report.html of an analysed run")
    p_figures.add_argument(
        "path", help="a run directory, a folder of run directories, or a sweep folder"
    )
    p_figures.add_argument(
        "--formats", default="html,png,svg", help="comma-separated: html, png, svg (default all)"
    )
    p_figures.add_argument(
        "--color-by",
        help="sweep: the field that colours the curves, or 'name' (a colour per run); "
        "default: the first swept field, or 'name' for a sweep with [zip] lists",
    )
    p_figures.set_defaults(func=_cmd_figures)

    p_watch = sub.add_parser(
        "watch",
        help="analyse a training run's new checkpoints as they land; self-refreshing report",
        description="Run beside 'grokinterp train': analyse new checkpoints as they land and "
        "rewrite RUN/figures/report.html (HTML only), which reloads itself in the browser "
        "until training ends, with the current forecast of T_grok and its interval (or "
        "'not yet' and why). Waits for a run that has not started; exits after the final "
        "report. Ctrl-C stops it (exit code 0); the files on disk stay complete.",
    )
    p_watch.add_argument("run", help="the run directory (it may not exist yet)")
    p_watch.add_argument(
        "--interval", type=float, default=10.0, help="seconds between polls (default 10)"
    )
    p_watch.add_argument(
        "--once", action="store_true", help="analyse what is there, write the report, exit"
    )
    p_watch.add_argument(
        "--no-forecast", action="store_true", help="leave the live T_grok forecast out"
    )
    p_watch.set_defaults(func=_cmd_watch)

    p_forecast = sub.add_parser(
        "forecast",
        help="forecast T_grok (with an interval) from a run's plateau after memorisation",
        description="Forecast T_grok from the checkpoints and metrics up to --upto (see "
        "docs/forecast.md). With --evaluate, PATH is a sweep or a folder of runs: every "
        "grokked run is cut at T_mem + f (T_grok - T_mem) and forecast; writes "
        "OUT/forecast.json and OUT/figures/forecast.{html,png,svg}.",
    )
    p_forecast.add_argument("path", help="a run directory (--evaluate: a sweep or run folder)")
    p_forecast.add_argument("--upto", type=int, help="use data up to this epoch (default: all)")
    p_forecast.add_argument("--json", action="store_true", help="also print the forecast as JSON")
    p_forecast.add_argument(
        "--evaluate", action="store_true", help="cut every grokked run early and compare"
    )
    p_forecast.add_argument(
        "--fractions",
        help="--evaluate/--calibrate: cut fractions f, comma-separated (default 1/4,1/3,1/2)",
    )
    p_forecast.add_argument(
        "--calibrate",
        action="store_true",
        help="measure the method's constants on PATH's grokked runs (cut at --fractions); "
        "writes OUT/forecast-calibration.json",
    )
    p_forecast.add_argument(
        "--calibration", help="a forecast-calibration.json to forecast with (default: shipped)"
    )
    p_forecast.add_argument(
        "--leave-out",
        choices=("run", "setting"),
        help="--evaluate: forecast each run with constants calibrated on the other runs (or "
        "on the runs of other settings)",
    )
    p_forecast.add_argument(
        "--out", help="--evaluate/--calibrate: folder to write to (default PATH)"
    )
    p_forecast.add_argument(
        "--formats", default="html,png,svg", help="--evaluate: figure formats (default all)"
    )
    p_forecast.set_defaults(func=_cmd_forecast)

    p_sweep = sub.add_parser(
        "sweep",
        help="train and analyse every run of a TOML sweep spec (resumable)",
        description="Train and analyse every run of a sweep spec; run again to resume. "
        "See grokinterp.sweep.spec for the spec format.",
    )
    p_sweep.add_argument("spec", help="the sweep spec (TOML), e.g. examples/sweep-wd-lr-p59.toml")
    p_sweep.add_argument("--out", help="sweep folder (default sweeps/<spec name>)")
    p_sweep.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p_sweep.add_argument(
        "--workers", type=int, help="local worker processes (default cores // threads)"
    )
    p_sweep.add_argument(
        "--backend", choices=["local", "ray"], default="local", help="where runs execute"
    )
    p_sweep.add_argument(
        "--address", help="ray: cluster address ('auto' finds a running one; default: start one)"
    )
    p_sweep.add_argument("--retry-failed", action="store_true", help="rerun failed runs too")
    p_sweep.add_argument("--quiet", action="store_true", help="no progress line")
    p_sweep.set_defaults(func=_cmd_sweep)

    p_laws = sub.add_parser(
        "laws",
        help="fit the grokking-delay laws across a sweep's runs (laws.json, figures)",
        description="Fit law (a), ln(T_grok - T_mem) = a + b ln(1/(lr wd)), and law (b), "
        "T_grok - T_mem = A ln(norm_mem/norm_post)/(lr wd) + B, to the grokked runs of a "
        "sweep, with bootstrap CIs; censored and failed runs are listed, not fitted. "
        "Writes SWEEP_DIR/laws.json and SWEEP_DIR/figures/laws_*. See docs/laws.md.",
    )
    p_laws.add_argument("sweep_dir", help="a sweep folder (grokinterp sweep's --out)")
    p_laws.add_argument(
        "--bootstrap", type=int, default=2000, help="bootstrap resamples (default 2000; 0: no CI)"
    )
    p_laws.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p_laws.add_argument(
        "--norms",
        default="memorisation_end,cleanup_end",
        help="law (b): where norm_mem and norm_post are read, two of T_mem, "
        "memorisation_end, T_grok, cleanup_end, end (default memorisation_end,cleanup_end)",
    )
    p_laws.add_argument(
        "--formats", default="html,png,svg", help="comma-separated: html, png, svg (default all)"
    )
    p_laws.add_argument(
        "--compare",
        default="",
        help="comma-separated sweep folders or runs.csv files to draw beside this sweep in "
        "laws_compare_delay_vs_rate (delay against 1 / decay per step)",
    )
    p_laws.set_defaults(func=_cmd_laws)

    p_bench = sub.add_parser("bench", help="print speed benchmarks")
    p_bench.add_argument(
        "what",
        choices=["train", "analyze", "watch", "sweep", "ensemble", "sharpness", "ridge", "stacked"],
    )
    p_bench.add_argument(
        "--epochs",
        type=int,
        help="epochs timed per loop (train: 100, ensemble: 20, ridge: 5000, stacked: 500)",
    )
    p_bench.add_argument("--no-ray", action="store_true", help="sweep: leave out the Ray way")
    p_bench.add_argument(
        "--run",
        help="analyze: time on this run's checkpoints (default: random-weight p=113 checkpoints)",
    )
    p_bench.add_argument(
        "--checkpoints",
        type=int,
        default=None,
        help="analyze: checkpoints timed on the batched path (default 32); watch: checkpoints "
        "in the run (default 32); sharpness: random checkpoints timed (default 2)",
    )
    p_bench.add_argument(
        "--p", type=int, help="watch, sharpness: modulus of the random run (default 113)"
    )
    p_bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.func(args)
    except (
        CliError,
        ConfigError,
        OptionError,
        RunFileError,
        RunExistsError,
        SweepLockedError,
    ) as err:
        print(f"grokinterp {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        again = (
            "run the same 'grokinterp sweep' command again"
            if args.command == "sweep"
            else "'grokinterp train --resume RUN_DIR'"
        )
        print(f"interrupted; continue with {again}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
