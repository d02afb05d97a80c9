"""What ``analyze`` is asked to compute: one typed, frozen object.

:class:`AnalysisSettings` holds the measures, the neuron (key-frequency) threshold, the
accuracy threshold of T_mem and T_grok, fixed key frequencies and the sharpness cadence.
It is checked at construction (an error names the fix) and round-trips through the
``settings`` of ``summary.json`` (:meth:`AnalysisSettings.to_dict` /
:meth:`AnalysisSettings.from_dict`), as :class:`~grokinterp.config.RunConfig` does through
``config.json``.

>>> AnalysisSettings(threshold=0.9).to_dict()["threshold"]
0.9
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from grokinterp.errors import OptionError
from grokinterp.measures.keyfreq import NEURON_THRESHOLD
from grokinterp.measures.llc import LLCSettings
from grokinterp.phases import ACC_THRESHOLD

__all__ = ["DEFAULT_SHARPNESS_EVERY", "AnalysisSettings"]

DEFAULT_SHARPNESS_EVERY = 200  # the costly measures run at every Nth checkpoint


@dataclass(frozen=True)
class AnalysisSettings:
    """The options of one analysis (docs/measures.md).

    measures: table measure names; None (or the name ``"default"``) stands for every
    registered measure but the costly, opt-in ones (``sharpness``).
    threshold: fraction of a neuron's variance its best frequency must explain for the
    neuron to belong to it.  acc_threshold: the accuracy of T_mem and T_grok.
    key_freqs: fixed key frequencies; None: those of the final checkpoint.
    sharpness_every: the costly measures run at every Nth checkpoint, the last one and the
    phase-boundary checkpoints only.
    """

    measures: tuple[str, ...] | None = None
    threshold: float = NEURON_THRESHOLD
    acc_threshold: float = ACC_THRESHOLD
    key_freqs: tuple[int, ...] | None = None
    sharpness_every: int = DEFAULT_SHARPNESS_EVERY
    llc: LLCSettings = LLCSettings()  # the opt-in llc measure's SGLD (at sharpness_every)

    def __post_init__(self):
        if self.measures is not None:
            if isinstance(self.measures, str):
                raise OptionError(
                    f"measures must be a list of names, got the string {self.measures!r}"
                )
            object.__setattr__(self, "measures", tuple(str(m) for m in self.measures))
        if self.key_freqs is not None:
            object.__setattr__(self, "key_freqs", tuple(sorted({int(k) for k in self.key_freqs})))
        every = self.sharpness_every
        if isinstance(every, bool) or not isinstance(every, int):
            raise OptionError(f"sharpness_every must be an integer >= 1, got {every!r}")
        if every < 1:
            raise OptionError(f"sharpness_every must be >= 1 (every Nth checkpoint), got {every}")
        if isinstance(self.llc, Mapping):
            object.__setattr__(self, "llc", LLCSettings(**self.llc))
        if not isinstance(self.llc, LLCSettings):
            raise OptionError(
                f"llc must be an LLCSettings or a dict of its fields, got {self.llc!r}"
            )
        if not 0 < self.threshold <= 1:
            raise OptionError(f"threshold must lie in (0, 1], got {self.threshold}")
        if not 0 < self.acc_threshold <= 1:
            raise OptionError(f"acc_threshold must lie in (0, 1], got {self.acc_threshold}")

    def replace(self, **changes) -> AnalysisSettings:
        """A copy with some fields changed (checked again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict:
        """The fields as stored in summary.json's ``settings`` (key_freqs as
        ``key_freqs_given``)."""
        return {
            "measures": None if self.measures is None else list(self.measures),
            "threshold": self.threshold,
            "acc_threshold": self.acc_threshold,
            "key_freqs_given": None if self.key_freqs is None else list(self.key_freqs),
            "sharpness_every": self.sharpness_every,
            "llc": self.llc.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> AnalysisSettings:
        """The settings of a ``to_dict`` (or of summary.json's ``settings``); other keys
        (the derived values the summary also stores) are ignored."""
        measures: Sequence[str] | None = data.get("measures")
        return cls(
            measures=None if measures is None else tuple(measures),
            threshold=float(data.get("threshold", NEURON_THRESHOLD)),
            acc_threshold=float(data.get("acc_threshold", ACC_THRESHOLD)),
            key_freqs=data.get("key_freqs_given"),
            sharpness_every=int(data.get("sharpness_every", DEFAULT_SHARPNESS_EVERY)),
            llc=LLCSettings(**(data.get("llc") or {})),
        )
