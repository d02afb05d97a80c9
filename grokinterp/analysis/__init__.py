"""Progress measures over a run's checkpoints: a registry of analyses and one tidy table.

:func:`analyze` runs every registered analysis on every complete checkpoint of a run and
writes ``analysis.csv`` (columns ``epoch, measure, key, value``) and ``summary.json`` in the
run directory (both atomically).  Checkpoints are processed in chunks with a batched
last-position forward pass (:mod:`grokinterp.batched`); :func:`measure_hooked` computes the
same rows for one model through TransformerLens hooks, and the tests prove they agree.

Table measures (``key`` is a string; scalar measures use the empty key ``""``; read the
file with :func:`read_table`, which keeps ``""`` as a string):

=====================  ==============================  =========================================
measure                key                             value
=====================  ==============================  =========================================
train_loss             ""                              float64 cross-entropy at '=' on train pairs
test_loss              ""                              the same on the test pairs
train_acc, test_acc    ""                              argmax accuracy on train / test pairs
embed_freq_norm        "0" .. "(p-1)/2"                norm of F @ W_E[:p] per freq (0 = constant)
wl_freq_norm           "0" .. "(p-1)/2"                the same for W_L = W_out @ W_U along outputs
gini_embed, gini_wl    ""                              Gini of the p component norms of W_E / W_L
neurons_per_freq       "1" .. "(p-1)/2"                neurons owned by frequency k (threshold)
n_key_freqs            ""                              frequencies owning neurons at this checkpoint
restricted_loss        "all", "train", "test"          loss of the key-frequency-restricted logits
excluded_loss          "all", "<k>" per key freq       train loss with the key frequencies removed
logit_explained_var    "all", "<k>" per key freq       variance fraction along cos(w_k(a+b-c))
attn_to                "h<i>:a", "h<i>:b", "h<i>:="    mean attention from '=' per head and target
weight_norm_sq         "total", "W_E", "W_pos", ...    sum of squares, total and per tensor
sharpness (opt-in)     "", "iterations"                top Hessian eigenvalue of the train loss
=====================  ==============================  =========================================

``sharpness`` is costly and opt-in (``measures=["default", "sharpness"]``): it is computed
at every ``sharpness_every``-th checkpoint, the last one and the phase-boundary
checkpoints only; the other checkpoints have no sharpness rows.

The definitions are in :mod:`grokinterp.measures` (one module per concept).

The Fourier measures (spectra, Gini, neurons, restricted / excluded loss, logit
structure) are taken in the basis of the run's task (:mod:`grokinterp.tasks`,
docs/tasks.md): Z_p as in the table above for add and sub; Z_{p-1} over discrete logs for
mul and div (p above reads p - 1, frequencies up to the Nyquist (p-1)/2); and skipped,
with the reason in summary.json (``skipped_measures``), for tasks without a basis.

Key frequencies are measured on the final (latest complete) checkpoint, unless given, and
held fixed for restricted_loss, excluded_loss and logit_explained_var at every checkpoint;
neurons_per_freq shows each frequency's own history.

Incremental runs.  A second :func:`analyze` of the same run keeps the stored rows that are
still valid and computes only the rest, giving the same table as a fresh run (up to
float32 round-off in the forward pass).  Rows are valid when the stored settings
(``summary.json``: analysis version, run config, threshold, key frequencies used) match
and the measure's code is the same: each measure's fingerprint (a hash of the source of
its compute function and of the grokinterp code it calls, the forward pass included;
:mod:`~grokinterp.analysis.fingerprint`) is stored in the settings, and an edited measure
is recomputed at every checkpoint.  New checkpoints add rows; if new checkpoints change
the final checkpoint's key frequencies (or ``key_freqs`` or ``threshold`` changes), every
checkpoint's rows of the measures that depend on them are recomputed.  Measures not
requested this time are kept if still valid and dropped if stale.

The epoch-slider frames are a product of the same pipeline: after the table, ``analyze``
measures them at up to 60 checkpoints, in the task's basis, and stores them in
``frames.npz`` (:mod:`~grokinterp.analysis.frames`); the slider figures only read them.

Where things live: :mod:`~grokinterp.analysis.options` (:class:`AnalysisSettings`, what
``analyze`` is asked for), :mod:`~grokinterp.analysis.checkpoints` (a chunk of checkpoints
and its shared forward pass), :mod:`~grokinterp.analysis.registry` (the registered measures),
:mod:`~grokinterp.analysis.batch` (rows over chunks, and the hooked reference),
:mod:`~grokinterp.analysis.table` (the table file and the cache),
:mod:`~grokinterp.analysis.summary` (summary.json), :mod:`~grokinterp.analysis.frames`
(frames.npz) and :mod:`~grokinterp.analysis.pipeline` (:func:`analyze`).
"""

from grokinterp.analysis.batch import checkpoint_detail, measure_batched, measure_hooked
from grokinterp.analysis.checkpoints import DEFAULT_CHUNK, Checkpoints
from grokinterp.analysis.options import AnalysisSettings
from grokinterp.analysis.pipeline import analyze, analyze_path
from grokinterp.analysis.registry import ANALYSES, SCALAR, Analysis, default_measures, register
from grokinterp.analysis.summary import format_summary
from grokinterp.analysis.table import ANALYSIS_VERSION, COLUMNS, read_table

__all__ = [
    "ANALYSES",
    "ANALYSIS_VERSION",
    "Analysis",
    "AnalysisSettings",
    "COLUMNS",
    "Checkpoints",
    "DEFAULT_CHUNK",
    "SCALAR",
    "analyze",
    "analyze_path",
    "checkpoint_detail",
    "default_measures",
    "format_summary",
    "measure_batched",
    "measure_hooked",
    "read_table",
    "register",
]
