"""Reading and writing run files: atomic writes, safetensors checkpoints, metrics CSV.

Every write goes to a temporary file in the same folder and is renamed over the target,
so a killed process leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from grokinterp import files
from grokinterp.errors import RunFileError  # noqa: F401  (re-exported)

# mkstemp creates files readable by the owner only; run files get the usual umask mode.
_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


# Our metadata travels as one sorted-JSON entry: safetensors writes a metadata map in
# random key order (a Rust HashMap), and the same checkpoint must give the same bytes.
_METADATA_KEY = "grokinterp"


def save_tensors(
    path: Path,
    tensors: dict[str, torch.Tensor],
    metadata: dict[str, str],
    dtype: torch.dtype | None = torch.float32,
) -> None:
    """Save tensors as safetensors (exact ``dtype`` copies, never pickle), atomically.

    ``dtype`` None keeps each tensor's own dtype (the float64 toy runs)."""
    payload = {
        k: v.detach().to("cpu", v.dtype if dtype is None else dtype).contiguous()
        for k, v in tensors.items()
    }
    header = {_METADATA_KEY: json.dumps(metadata, sort_keys=True)}
    atomic_write_bytes(path, save(payload, metadata=header))


def load_tensors(
    path: Path, expected_format: str
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Load a grokinterp safetensors file, checking it is complete and of the right kind."""
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: file not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        metadata = json.loads(header.get(_METADATA_KEY, "{}"))
    except (SafetensorError, OSError, ValueError) as err:
        raise RunFileError(
            f"{path}: not a readable safetensors file (truncated or foreign?): {err}"
        ) from None
    if metadata.get("format") != expected_format:
        raise RunFileError(
            f"{path}: not a {expected_format} file (its format tag is "
            f"{metadata.get('format')!r}); was it written by grokinterp?"
        )
    return tensors, metadata


def read_json(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunFileError(f"{path}: not valid JSON (truncated?): {err}") from None
    if not isinstance(data, dict):
        raise RunFileError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def write_json(path: Path, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def format_metric_rows(rows: list[dict]) -> str:
    out = io.StringIO()
    for row in rows:
        out.write(
            ",".join(
                _cell(row.get(col)) if col != "epoch" else str(int(row["epoch"]))
                for col in files.METRIC_COLUMNS
            )
            + "\n"
        )
    return out.getvalue()


def metrics_header() -> str:
    return ",".join(files.METRIC_COLUMNS) + "\n"


def read_metrics(path: Path) -> list[dict]:
    """Rows of metrics.csv as dicts (missing values are None).

    A last line cut off by a kill is ignored, so a run that is still training (or was
    killed) reads cleanly.
    """
    path = Path(path)
    if not path.is_file():
        raise RunFileError(f"{path}: file not found")
    text = path.read_text()
    lines = text.split("\n")
    if lines and lines[-1] != "":
        lines = lines[:-1]  # a partial line: the writer was interrupted mid-row
    reader = csv.reader(line for line in lines if line)
    header = next(reader, None)
    if header is None or tuple(header) != files.METRIC_COLUMNS:
        raise RunFileError(
            f"{path}: header {header} is not the grokinterp metrics header "
            f"{list(files.METRIC_COLUMNS)}"
        )
    rows = []
    for cells in reader:
        if len(cells) != len(header):
            continue
        row: dict = {"epoch": int(cells[0])}
        for name, cell in zip(header[1:], cells[1:], strict=True):
            row[name] = float(cell) if cell else None
        rows.append(row)
    return rows
