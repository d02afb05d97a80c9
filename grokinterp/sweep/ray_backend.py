"""The Ray backend: each run of a sweep is a Ray task with ``num_cpus = threads``.

Ray is an optional extra (``pip install 'grokinterp[ray]'``); this module imports it only
when a backend runs.

- ``RayBackend("auto")`` joins a running cluster (``ray start --head`` on this machine or
  a cluster's head); ``RayBackend("HOST:PORT")`` joins the cluster at that address.  The
  cluster's workers must import the same ``grokinterp`` and reach the sweep folder at the
  same path (a shared file system), since each task writes its own run directory there.
- ``RayBackend()`` starts a Ray on this machine for the sweep and stops it afterwards:
  loopback only (the node's address is 127.0.0.1, as Ray does on macOS), no dashboard,
  no usage statistics.
- In a process where Ray is already initialised (``ray.init`` was called), that Ray is
  used and left running.

A task whose worker process dies (killed, out of memory, a node lost) is retried by Ray
up to ``max_retries`` times; :func:`grokinterp.sweep.worker.run_one` resumes the run from
its last checkpoint, so the retried run ends byte-identical to an uninterrupted one.  A
run still failing after that is reported failed, like any other failed run.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grokinterp.config import OptionError
from grokinterp.sweep.backends import OnResult, OnStart, available_cores
from grokinterp.sweep.manifest import FAILED
from grokinterp.sweep.worker import run_one

__all__ = ["LOCAL_RAY_ENV", "RayBackend", "start_local_ray"]

log = logging.getLogger(__name__)

# Set before a local Ray starts; Ray's own processes inherit them.
LOCAL_RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",  # no usage statistics sent anywhere
    # Ray binds its servers to the node's address; with this it takes the loopback
    # address (as it does on macOS), so nothing listens beyond this machine.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # Ray lowers its workers' priority to nice 15 by default: on a machine with any other
    # busy process (a second sweep, a notebook, the tests) the runs then get a few percent
    # of a core.  The runs are the work, so they run at the caller's priority.
    "RAY_worker_niceness": "0",
}


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            f"the Ray backend needs Ray: pip install 'grokinterp[ray]' ({err})"
        ) from None
    return ray


def start_local_ray(num_cpus: int | None = None, **init_kwargs: Any):
    """Start a Ray on this machine for this process: loopback only, no dashboard, no usage
    statistics, ``num_cpus`` CPUs (default: the cores this process may use).

    Returns the ``ray`` module.  Stop it with ``ray.shutdown()``.
    """
    os.environ.update(LOCAL_RAY_ENV)
    ray = _import_ray()
    # Ray reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER when it is first imported; if it was
    # imported before this call, set the switch it was read into as well.
    from ray._private import ray_constants

    ray_constants.ENABLE_RAY_CLUSTER = False
    ray.init(
        num_cpus=num_cpus or available_cores(),
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        **init_kwargs,
    )
    return ray


def _failed(name: str, err: BaseException) -> dict[str, Any]:
    return {
        "name": name,
        "status": FAILED,
        "error": f"the Ray task failed after its retries: {type(err).__name__}: {err}"[:2000],
        "traceback": None,
        "wall_s": float("nan"),
    }


class RayBackend:
    """Runs each run as a Ray task (``num_cpus = threads``, retried ``max_retries`` times
    when its worker dies).  ``address``: None starts a local Ray for the sweep; "auto"
    finds a running one; "HOST:PORT" joins that cluster.  ``num_cpus`` is the size of a
    local Ray (default: this machine's cores); it is ignored when joining a cluster.
    """

    def __init__(
        self, address: str | None = None, max_retries: int = 3, num_cpus: int | None = None
    ):
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        self.address = address
        self.max_retries = max_retries
        self.num_cpus = num_cpus

    def _connect(self):
        """The ray module, connected; and whether this backend started it (and stops it)."""
        ray = _import_ray()
        if ray.is_initialized():
            return ray, False
        if self.address is None:
            log.info("starting a local Ray (loopback only, no dashboard)")
            start_local_ray(self.num_cpus)
        else:
            ray.init(address=self.address, log_to_driver=False, configure_logging=False)
        return ray, True

    def run(
        self,
        sweep_dir: str,
        names: Sequence[str],
        threads: int,
        on_result: OnResult,
        on_start: OnStart | None = None,
    ) -> None:
        ray, started = self._connect()
        try:
            cpus = int(ray.cluster_resources().get("CPU", 0))
            if cpus < threads:
                raise OptionError(
                    f"the Ray cluster has {cpus} CPUs, fewer than --threads {threads}; "
                    f"lower --threads or add CPUs"
                )
            # Only as many tasks in flight as the cluster can run at once, so that a run
            # reported as started is running (the rest wait here, not in Ray's queue).
            slots = max(1, cpus // threads)
            task = ray.remote(num_cpus=threads, max_retries=self.max_retries)(run_one)
            # An absolute path: Ray's workers need not share the caller's working directory.
            folder = str(Path(sweep_dir).resolve())
            queue = list(names)
            running: dict[Any, str] = {}
            while queue or running:
                while queue and len(running) < slots:
                    name = queue.pop(0)
                    running[task.remote(folder, name, threads)] = name
                    if on_start is not None:
                        on_start(name)
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    name = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as err:  # retries used up
                        log.warning("the Ray task of %s failed: %s", name, err)
                        result = _failed(name, err)
                    on_result(result)
        finally:
            if started:
                ray.shutdown()
