"""The errors grokinterp raises on bad input; each message names what to change.

Kept in one module with no grokinterp imports, so any module can raise them without an
import cycle (config and schedule both need :class:`ConfigError`).
"""

from __future__ import annotations

__all__ = ["ConfigError", "OptionError", "RunExistsError", "RunFileError"]


class ConfigError(ValueError):
    """A configuration value is not allowed; the message names the field and the fix."""


class OptionError(ValueError):
    """An option of an analysis or figure call is not allowed; the message says what is."""


class RunFileError(RuntimeError):
    """A run file is missing, truncated or not a grokinterp file; the message names it."""


class RunExistsError(RuntimeError):
    """The output folder already holds a run that this one would overwrite."""
