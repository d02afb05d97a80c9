"""A sweep spec: a base config plus axes, read from TOML and expanded to named runs.

A spec file::

    name = "wd-lr-p59"            # optional; the sweep's name (default: the file's stem)
    seeds = [[999, 598], [1, 2]]  # optional (init_seed, data_seed) pairs, one run each

    [base]                        # any RunConfig fields, shared by every run
    p = 59
    epochs = 40000
    stop_after_grok = 1500

    [grid]                        # Cartesian product over any RunConfig fields
    weight_decay = [0.5, 1.0, 2.0]
    lr = [1e-3, 3e-3]

    [zip]                         # optional: lists of one length, varied together
    d_mlp = [256, 512]            # (several groups: write [[zip]] tables instead)
    d_model = [64, 128]

The runs are the product of the grid axes, the zip groups and the seed pairs, in that
order (the first grid axis varies slowest).  Each run is named after the fields that
vary across the sweep, e.g. ``wd0.5-lr0.001-init999-data598``.  A field may appear in
one place only (``[base]``, one axis, or ``seeds`` for init_seed/data_seed); ``name`` is
set by the sweep.  ``checkpoints`` defaults to :data:`grokinterp.schedule.SWEEP_SCHEDULE`.

Everything is checked before any run starts: unknown keys and fields, empty axes, a grid
axis that repeats a value, zip lists of unequal length or a zip entry that repeats an
earlier one (one zip list alone may repeat a value), and every run's config through
:class:`RunConfig`; each error names the field (and the run) to fix.
"""

from __future__ import annotations

import itertools
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from grokinterp.config import (
    FIELD_ALIASES,
    UNSAFE_NAME_CHARS,
    ConfigError,
    RunConfig,
    name_value,
)
from grokinterp.models.config import ToyConfig, config_class, config_from_dict, is_toy
from grokinterp.schedule import SWEEP_SCHEDULE

__all__ = ["SpecError", "SweepSpec", "load_spec", "parse_spec"]

TOP_LEVEL = ("name", "seeds", "base", "grid", "zip")
SET_BY_SWEEP = ("name",)
SEED_FIELDS = ("init_seed", "data_seed")

# Short names used in run names; other fields appear under their own name.
ALIASES = {
    **FIELD_ALIASES,
    "init_seed": "init",
    "data_seed": "data",
    "init_scale": "scale",
    "stop_after_grok": "stop",
    "stop_after_grok_delays": "stopx",
    "operation": "",  # the task's own name reads best: add-wd1, mul-wd1
    "family": "",  # likewise for a toy model family: linear-wd0.01
}

_UNSAFE = UNSAFE_NAME_CHARS


class SpecError(ConfigError):
    """A sweep spec is not allowed; the message names the key or field and the fix."""


@dataclass(frozen=True)
class SweepSpec:
    """A parsed spec.  ``runs()`` expands it; ``to_dict()`` is what the manifest stores."""

    name: str
    base: dict[str, Any]
    grid: dict[str, list]
    zips: tuple[dict[str, list], ...]
    seeds: tuple[tuple[int, int], ...] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": dict(self.base),
            "grid": {k: list(v) for k, v in self.grid.items()},
            "zip": [{k: list(v) for k, v in z.items()} for z in self.zips],
            "seeds": None if self.seeds is None else [list(s) for s in self.seeds],
        }

    @property
    def axes(self) -> list[str]:
        """The fields the spec varies, in expansion order."""
        out = list(self.grid)
        for group in self.zips:
            out += list(group)
        if self.seeds is not None:
            out += list(SEED_FIELDS)
        return out

    def _combinations(self) -> list[dict[str, Any]]:
        parts: list[list[dict[str, Any]]] = [
            [{field: value} for value in values] for field, values in self.grid.items()
        ]
        for group in self.zips:
            rows = zip(*group.values(), strict=True)
            parts.append([dict(zip(group, row, strict=True)) for row in rows])
        if self.seeds is not None:
            parts.append([dict(zip(SEED_FIELDS, pair, strict=True)) for pair in self.seeds])
        return [
            {k: v for part in combo for k, v in part.items()} for combo in itertools.product(*parts)
        ]

    def varying(self) -> list[str]:
        """The axes whose value differs between runs (these name the runs)."""
        combos = self._combinations()
        return [f for f in self.axes if len({_key(c[f]) for c in combos}) > 1]

    def runs(self) -> dict[str, RunConfig | ToyConfig]:
        """{run name: config} for every run, in expansion order.  Raises SpecError."""
        combos = self._combinations()
        varying = self.varying()
        out: dict[str, RunConfig] = {}
        for combo in combos:
            name = run_name(combo, varying) if varying else self.name
            fields_ = {**self.base, **combo, "name": name}
            try:
                cfg = config_from_dict(fields_)
            except ConfigError as err:
                shown = ", ".join(f"{k}={v!r}" for k, v in combo.items()) or "the base config"
                raise SpecError(f"run {name} ({shown}): {err}") from None
            if name in out:
                raise SpecError(
                    f"two runs are both named {name!r} (values that print alike?); "
                    f"make the values of {varying} distinct"
                )
            out[name] = cfg
        return out


def _key(value: Any) -> tuple:
    return (type(value) is bool, float(value)) if isinstance(value, int | float) else (2, value)


def run_name(combo: dict[str, Any], varying: list[str]) -> str:
    """``wd1-lr0.001-init999-data598``: alias and value of each varying field."""
    parts = [f"{ALIASES.get(f, f)}{name_value(combo[f])}" for f in varying]
    return _UNSAFE.sub("_", "-".join(parts))


# ------------------------------------------------------------------------------- parsing


def _field_names(base: dict[str, Any] | None = None) -> list[str]:
    """The config fields a spec may set: RunConfig's, or ToyConfig's when ``[base]`` names a
    toy ``family`` (grokinterp.models, docs/toys.md)."""
    return [f.name for f in fields(config_class(base or {}))]


def _normalise(field: str, value: Any, base: dict[str, Any] | None = None) -> Any:
    """TOML's ``1`` for a float field is stored as ``1.0``, so configs compare and print alike."""
    kinds = {f.name: f.type for f in fields(config_class(base or {}))}
    if kinds.get(field) == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _check_fields(where: str, names: list[str], base: dict[str, Any] | None = None) -> None:
    known = _field_names(base)
    for name in names:
        if name in SET_BY_SWEEP:
            raise SpecError(f"{where}: '{name}' is set by the sweep (one name per run); remove it")
        if name not in known:
            close = [k for k in known if k.split("_")[0] == name.split("_")[0]]
            hint = f" (did you mean {close}?)" if close else ""
            raise SpecError(
                f"{where}: unknown RunConfig field '{name}'{hint}; allowed fields: {known}"
            )


def _check_values(
    where: str, field: str, values: Any, base: dict[str, Any], *, unique: bool = True
) -> list:
    """Each axis value checked alone on the base config, so the error names this field.

    A grid axis must not repeat a value (``unique``); a zip list may, since only the zipped
    tuples must differ (e.g. ``grokfast = ["ema", "none", "none"]``, ``lr = [1e-3, 1e-3, 3e-3]``).
    """
    if not isinstance(values, list):
        raise SpecError(f"{where} {field}: expected a list of values, got {values!r}")
    if not values:
        raise SpecError(f"{where} {field}: empty list; give at least one value")
    values = [_normalise(field, v, base) for v in values]
    for value in values:
        try:
            config_from_dict({**base, field: value})
        except ConfigError as err:
            raise SpecError(f"{where} {field} = {value!r}: {err}") from None
    keys = [_key(v) for v in values]
    if unique and len(set(keys)) != len(keys):
        raise SpecError(f"{where} {field}: repeated values in {values!r}")
    return values


def parse_spec(data: dict[str, Any], default_name: str = "sweep") -> SweepSpec:
    """A spec from its parsed TOML (a dict).  Raises SpecError naming what to fix."""
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise SpecError(f"unknown top-level key(s) {unknown}; allowed: {list(TOP_LEVEL)}")
    name = data.get("name", default_name)
    if not isinstance(name, str) or not name or _UNSAFE.search(name):
        raise SpecError(f"name: expected a plain folder name, got {name!r}")

    base = data.get("base", {})
    if not isinstance(base, dict):
        raise SpecError("[base]: expected a table of RunConfig fields")
    _check_fields("[base]", list(base), base)
    schedule = {} if is_toy(base) else {"checkpoints": SWEEP_SCHEDULE}
    base = {**schedule, **{k: _normalise(k, v, base) for k, v in base.items()}}
    try:
        config_from_dict(base)
    except ConfigError as err:
        raise SpecError(f"[base]: {err}") from None

    seen: dict[str, str] = {field: "[base]" for field in data.get("base", {})}

    def claim(field: str, where: str) -> None:
        if field in seen:
            raise SpecError(
                f"{where} {field}: '{field}' is also given in {seen[field]}; a field may be "
                f"set in one place only"
            )
        seen[field] = where

    grid = data.get("grid", {})
    if not isinstance(grid, dict):
        raise SpecError("[grid]: expected a table of field = [values]")
    if "grid" in data and not grid:
        raise SpecError("[grid] is empty; give at least one field = [values], or remove it")
    _check_fields("[grid]", list(grid), base)
    grid = {field: _check_values("[grid]", field, values, base) for field, values in grid.items()}
    for field in grid:
        claim(field, "[grid]")

    raw_zips = data.get("zip", [])
    raw_zips = [raw_zips] if isinstance(raw_zips, dict) else raw_zips
    if not isinstance(raw_zips, list) or not all(isinstance(z, dict) for z in raw_zips):
        raise SpecError("zip: expected a [zip] table or [[zip]] tables of field = [values]")
    zips = []
    for i, group in enumerate(raw_zips):
        where = "[zip]" if len(raw_zips) == 1 else f"[[zip]] #{i + 1}"
        if not group:
            raise SpecError(f"{where} is empty; give field = [values] lists, or remove it")
        _check_fields(where, list(group), base)
        group = {
            f: _check_values(where, f, values, base, unique=False) for f, values in group.items()
        }
        for field in group:
            claim(field, where)
        lengths = {field: len(values) for field, values in group.items()}
        if len(set(lengths.values())) > 1:
            raise SpecError(f"{where}: lists of unequal length {lengths}; zip needs one length")
        rows = list(zip(*([_key(v) for v in vals] for vals in group.values()), strict=True))
        repeated = sorted({i + 1 for i, row in enumerate(rows) if rows.index(row) != i})
        if repeated:
            raise SpecError(
                f"{where}: entries {repeated} repeat an earlier entry of {list(group)}; each "
                f"zipped tuple must differ"
            )
        zips.append(dict(group))

    seeds = data.get("seeds")
    if seeds is not None:
        ok = (
            isinstance(seeds, list)
            and seeds
            and all(
                isinstance(s, list)
                and len(s) == 2
                and all(isinstance(x, int) and not isinstance(x, bool) for x in s)
                for s in seeds
            )
        )
        if not ok:
            raise SpecError(
                f"seeds: expected a non-empty list of [init_seed, data_seed] integer pairs, "
                f"e.g. [[999, 598], [1, 2]]; got {seeds!r}"
            )
        for field in SEED_FIELDS:
            claim(field, "seeds")
        pairs = [tuple(s) for s in seeds]
        if len(set(pairs)) != len(pairs):
            raise SpecError(f"seeds: repeated pairs in {seeds!r}")
        seeds = tuple(pairs)

    spec = SweepSpec(name, base, dict(grid), tuple(zips), seeds)
    spec.runs()  # every run's config, validated now
    return spec


def load_spec(path: str | Path) -> tuple[SweepSpec, str]:
    """Read a TOML spec file; returns the spec and the file's text (kept in the sweep)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: spec file not found")
    text = path.read_text()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: not valid TOML: {err}") from None
    try:
        return parse_spec(data, default_name=_UNSAFE.sub("_", path.stem)), text
    except SpecError as err:
        raise SpecError(f"{path}: {err}") from None
