"""The Ray backend against a real local Ray (loopback only, started once for the module).

The README's test command installs Ray (``pip install -e '.[dev,ray]'``); elsewhere these
tests are skipped when Ray is missing, except under CI, where a missing Ray fails them.
"""

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from grokinterp import files
from grokinterp.sweep import InlineBackend, LocalBackend, run_sweep
from grokinterp.sweep.manifest import MANIFEST, read_manifest, run_dir
from tests.conftest import assert_same_runs

if os.environ.get("CI"):
    import ray
else:
    ray = pytest.importorskip("ray", reason="the Ray backend is an extra: pip install '.[ray]'")

from grokinterp.sweep.ray_backend import RayBackend, start_local_ray  # noqa: E402

pytestmark = pytest.mark.slow

TINY = Path(__file__).resolve().parent / "data" / "sweep-tiny.toml"
# One run long enough to be killed in the middle: p = 11, 3,000 epochs, a checkpoint
# every 100.
LONG = """
name = "long"
[base]
p = 11
frac_train = 0.5
d_model = 32
n_heads = 2
d_head = 16
d_mlp = 64
epochs = 3000
eval_every = 10
checkpoints = "every:100"
[grid]
weight_decay = [1.0]
"""


# A Ray that does not come up, or a sweep that does not end, fails these tests within
# minutes instead of hanging the suite.
START_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (2 CPUs, loopback only); RayBackend uses it."""

    # ray.init must run in the main thread; an alarm interrupts it if it hangs.
    def give_up(signum, frame):
        raise TimeoutError(f"a local Ray did not start within {START_TIMEOUT_S} s")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(START_TIMEOUT_S)
    try:
        start_local_ray(num_cpus=2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_the_local_ray_is_on_the_loopback_address(local_ray):
    assert {node["NodeManagerAddress"] for node in local_ray.nodes()} == {"127.0.0.1"}


def within(seconds: float, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a thread; fail the test if it has not returned in time."""
    out, errors = [], []

    def call():
        try:
            out.append(fn(*args, **kwargs))
        except BaseException as err:  # re-raised in the test's thread
            errors.append(err)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(timeout=seconds)
    if thread.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {seconds} s")
    if errors:
        raise errors[0]
    return out[0]


def test_ray_workers_run_at_the_callers_priority(local_ray):
    # Ray's default (nice 15) starves the runs on a machine with any other busy process.
    niceness = local_ray.remote(lambda: os.nice(0))
    assert within(120, local_ray.get, niceness.remote()) == os.nice(0)


def test_ray_gives_the_same_runs_as_the_local_pool(local_ray, tmp_path):
    on_pool = run_sweep(TINY, tmp_path / "pool", threads=1, backend=LocalBackend(2))
    on_ray = within(600, run_sweep, TINY, tmp_path / "ray", threads=1, backend=RayBackend())
    assert local_ray.is_initialized()  # the backend used the module's Ray and left it up
    assert set(read_manifest(on_ray)["runs"]) == set(read_manifest(on_pool)["runs"])
    assert len(read_manifest(on_ray)["runs"]) == 4
    assert_same_runs(on_pool, on_ray)


def _pid_writing(path: Path) -> int | None:
    """The process (other than this one) that holds ``path`` open, from /proc."""
    target = str(path.resolve())
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            if any(os.readlink(fd) == target for fd in (proc / "fd").iterdir()):
                return int(proc.name)
        except OSError:  # gone, or not ours to read
            continue
    return None


def test_a_ray_worker_killed_mid_run_is_retried_and_resumes_byte_identical(local_ray, tmp_path):
    spec = tmp_path / "long.toml"
    spec.write_text(LONG)
    reference = run_sweep(spec, tmp_path / "reference", threads=1, backend=InlineBackend())

    out = tmp_path / "ray"
    results = []
    sweep = threading.Thread(
        target=lambda: results.append(
            run_sweep(spec, out, threads=1, backend=RayBackend(max_retries=2))
        )
    )
    sweep.start()
    # Kill the Ray worker process training the run once it has written a checkpoint
    # past the first: the worker is the process holding the run's metrics file open.
    killed = None
    deadline = time.time() + 300
    while killed is None and time.time() < deadline and sweep.is_alive():
        if not (out / MANIFEST).is_file():
            time.sleep(0.05)
            continue
        (name,) = read_manifest(out)["runs"]
        run = run_dir(out, name)
        if len(list(run.glob(f"{files.CHECKPOINT_DIR}/*.safetensors"))) >= 3:
            pid = _pid_writing(run / files.METRICS)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)
                killed = pid
        time.sleep(0.02)
    assert killed is not None, "the run finished (or never started) before it could be killed"
    sweep.join(timeout=600)
    assert not sweep.is_alive() and results == [out]
    assert read_manifest(out)["runs"][name]["status"] in ("done", "censored")
    assert_same_runs(reference, out)
