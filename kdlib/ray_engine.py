"""The grid's cells as Ray tasks: ``KDLIB_ENGINE=ray`` (or ``run_grid(..., engine="ray")``).

Every missing cell of :func:`kdlib.grid.run_grid` becomes one Ray task with its CPU (and, when the cluster has GPUs,
GPU) requirement; the driver collects the outputs as they arrive and writes each one into the content-keyed cache,
so a cluster needs no shared file system: workers return results through Ray's object store and only the driver
touches ``.cache/``. A cell that raises, or whose worker dies, is retried by Ray (``KDLIB_RAY_RETRIES`` times,
default 2); a cell that still fails is reported with its arguments after every other cell has finished and been
cached, so nothing else is lost and a re-run computes only the cells that are missing.

Which cluster: ``KDLIB_RAY_ADDRESS`` (e.g. ``ray://head:10001`` or ``auto``); unset, ``ray.init()`` starts a local
cluster on this machine. Workers must be able to import kdlib (on a multi-node cluster: the same environment on every
node, or a ``runtime_env``; see the README's "Running on a cluster").
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Sequence

from tqdm.auto import tqdm

ADDRESS_ENV = "KDLIB_RAY_ADDRESS"
RETRIES_ENV = "KDLIB_RAY_RETRIES"
CPUS_ENV = "KDLIB_RAY_CPUS_PER_CELL"


class CellFailed(RuntimeError):
    """Cells that failed on every attempt; the message names each one's arguments and error."""


def _ray():
    try:
        import ray
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError("the Ray engine needs ray: pip install -e '.[ray]'") from error
    return ray


def _ship_by_value(fn: Callable[..., Any], ray) -> None:
    """Send ``fn``'s module with the task unless it is kdlib's own (which every worker imports): a cell function
    defined in a script, a test file or a notebook is not importable on a worker."""
    module = sys.modules.get(fn.__module__)
    if module is not None and not fn.__module__.startswith("kdlib") and fn.__module__ != "__main__":
        ray.cloudpickle.register_pickle_by_value(module)


def _reason(error: Exception) -> str:
    """The one-line reason of a failed task: the cell's own exception when Ray wraps one."""
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"


def _run_cell(fn: Callable[..., Any], args: dict, threads: int) -> Any:
    """One cell inside a Ray worker (torch limited to the cell's CPUs)."""
    import torch

    torch.set_num_threads(threads)
    return fn(**args)


class RayEngine:
    """Runs cells as Ray tasks (see the module docstring)."""

    def __init__(self, address: str | None = None, cpus_per_cell: float | None = None, retries: int | None = None) -> None:
        self.address = address if address is not None else os.environ.get(ADDRESS_ENV)
        self.cpus_per_cell = float(cpus_per_cell if cpus_per_cell is not None else os.environ.get(CPUS_ENV, 1))
        self.retries = int(retries if retries is not None else os.environ.get(RETRIES_ENV, 2))
        if self.cpus_per_cell <= 0 or self.retries < 0:
            raise ValueError(f"need cpus_per_cell > 0 and retries >= 0, got {self.cpus_per_cell} and {self.retries}")

    def _connect(self):
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address or None, include_dashboard=False, log_to_driver=False, configure_logging=False)
        return ray

    def run(self, fn: Callable[..., Any], cells: Sequence, done: Callable[[int, Any], None], desc: str, progress: bool) -> None:
        ray = self._connect()
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
        task = ray.remote(num_cpus=self.cpus_per_cell, num_gpus=gpus, max_retries=self.retries, retry_exceptions=True)(_run_cell)
        threads = max(1, int(self.cpus_per_cell))
        _ship_by_value(fn, ray)
        pending = {task.remote(fn, dict(cell.args), threads): position for position, cell in enumerate(cells)}
        failures = []
        with tqdm(total=len(cells), desc=f"{desc} [ray]", leave=False, disable=not progress) as bar:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1)
                position = pending.pop(ready[0])
                try:
                    done(position, ray.get(ready[0]))
                except (ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError, ray.exceptions.RayError) as error:
                    failures.append((cells[position], error))
                bar.update()
        if failures:
            lines = [f"{cell.label}: {_reason(error)}" for cell, error in failures]
            raise CellFailed(f"{len(failures)} cell(s) failed after {self.retries} retries (every other cell is cached):\n" + "\n".join(lines))
