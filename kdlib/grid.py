"""One grid runner: methods x settings x seeds -> tidy records, one progress bar, resumable.

Each cell ``fn(method=..., seed=..., **setting) -> {metric: value}`` is cached under a key made of the
experiment name, the function's qualified name, the cell's arguments and a ``context`` (everything else the
cell depends on: data sizes, teacher keys, recipes). A re-run recomputes only missing cells. Cells go through
an *engine*; ``"local"`` runs them in this process, and a later engine can send the same cells elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence

from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.results import Record

CellFn = Callable[..., Mapping[str, float]]


@dataclass(frozen=True)
class Cell:
    """One (method, setting, seed) of a grid."""

    method: str
    setting: Mapping[str, Any]
    seed: int

    @property
    def setting_label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.setting.items()) or "default"


class Engine(Protocol):
    def run(self, fn: CellFn, cells: Sequence[Cell], compute: Callable[[Cell], Mapping[str, float]], desc: str) -> list[Mapping[str, float]]: ...


class LocalEngine:
    """Runs cells one after another in this process, with one progress bar."""

    def run(self, fn, cells, compute, desc):
        return [compute(cell) for cell in tqdm(cells, desc=desc, leave=True)]


ENGINES: dict[str, Engine] = {"local": LocalEngine()}


def run_grid(
    fn: CellFn,
    *,
    experiment: str,
    methods: Sequence[str],
    seeds: Sequence[int],
    settings: Sequence[Mapping[str, Any]] = ({},),
    context: Any = None,
    cache: Cache | None = None,
    engine: str = "local",
) -> list[Record]:
    """Run every (setting, method, seed) cell and return one :class:`Record` per metric.

    Args:
        fn: ``fn(method=..., seed=..., **setting)`` returning ``{metric: value}``.
        experiment: name written into every record (and part of the cache key).
        methods, seeds, settings: the grid; each setting is a dict of keyword arguments for ``fn``.
        context: fingerprintable description of everything else the cells depend on.
        cache: where finished cells are kept (default: the kdlib cache).
        engine: a name from :data:`ENGINES`.
    """
    if not methods or not seeds or not settings:
        raise ValueError("methods, seeds and settings must each be non-empty")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; available: {sorted(ENGINES)}")
    cache = cache or Cache()
    cells = [Cell(m, dict(s), int(seed)) for s in settings for m in methods for seed in seeds]
    identity = f"{type(fn).__module__}.{type(fn).__qualname__}" if not hasattr(fn, "__qualname__") else f"{fn.__module__}.{fn.__qualname__}"

    def compute(cell: Cell) -> Mapping[str, float]:
        key = {"experiment": experiment, "fn": identity, "method": cell.method, "seed": cell.seed, "setting": dict(cell.setting), "context": context}
        return cache.get_or_compute("grid", key, lambda: dict(fn(method=cell.method, seed=cell.seed, **cell.setting)))

    outputs = ENGINES[engine].run(fn, cells, compute, desc=experiment)
    return list(_records(experiment, cells, outputs))


def _records(experiment: str, cells: Sequence[Cell], outputs: Sequence[Mapping[str, float]]) -> Iterable[Record]:
    for cell, metrics in zip(cells, outputs):
        if not metrics:
            raise ValueError(f"cell {cell} returned no metrics")
        for metric, value in metrics.items():
            yield Record(experiment, cell.method, cell.setting_label, cell.seed, metric, float(value))
