"""Every notebook's units of work: cells -> tidy rows, cached by content, resumable, run by an engine.

A *cell* is a call ``fn(**args)`` of a module-level function with plain-data arguments (one stacked training of a
task and seed, one search run, ...). It returns one row (a mapping of metric -> value), several rows (a list of
mappings, e.g. one per student of a stack) or a DataFrame. Each finished cell is stored in the content-keyed cache
under its experiment, the function's qualified name, its arguments and a ``context`` (everything else it depends on
that its arguments do not name: data versions, teacher keys, a protocol version), so a re-run recomputes only the
cells that are missing. Cells go through an *engine*: ``"local"`` runs them one after another in this process; an
engine for a cluster receives the same cells and returns the same outputs, which the driver caches as they arrive.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Protocol, Sequence

import pandas as pd
from tqdm.auto import tqdm

from kdlib.cache import Cache

CellFn = Callable[..., Any]
ENGINE_ENV = "KDLIB_ENGINE"
GRID_VERSION = 2


@dataclass(frozen=True)
class Cell:
    """One unit of work: the arguments of one call of the grid's function."""

    args: Mapping[str, Any]

    @property
    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.args.items()) or "default"


class Engine(Protocol):
    """Runs the missing cells and hands each output to ``done(position, output)`` as soon as it exists."""

    def run(self, fn: CellFn, cells: Sequence[Cell], done: Callable[[int, Any], None], desc: str, progress: bool) -> None: ...


class LocalEngine:
    """Runs cells one after another in this process, with one progress bar."""

    def run(self, fn, cells, done, desc, progress):
        for position, cell in enumerate(tqdm(cells, desc=desc, leave=False, disable=not progress)):
            done(position, fn(**cell.args))


ENGINES: dict[str, Callable[[], Engine]] = {
    "local": LocalEngine,
    "ray": lambda: importlib.import_module("kdlib.ray_engine").RayEngine(),  # the optional extra: pip install -e '.[ray]'
}


def register_engine(name: str, factory: Callable[[], Engine]) -> None:
    """Make ``name`` selectable as ``engine=`` or through ``KDLIB_ENGINE``."""
    ENGINES[name] = factory


def function_name(fn: CellFn) -> str:
    """``module.qualname`` of a cell function (part of every cache key)."""
    if not hasattr(fn, "__qualname__") or "<locals>" in fn.__qualname__ or fn.__qualname__ == "<lambda>":
        raise ValueError(f"a cell function must be a module-level function (it is cached by name and may run elsewhere), got {fn!r}")
    return f"{fn.__module__}.{fn.__qualname__}"


def run_grid(
    fn: CellFn,
    *,
    experiment: str,
    cells: Sequence[Mapping[str, Any]] | None = None,
    settings: Sequence[Mapping[str, Any]] = ({},),
    seeds: Sequence[int] | None = None,
    context: Any = None,
    cache: Cache | None = None,
    engine: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run every cell (cached) and return their rows, each with the cell's arguments as columns.

    Args:
        fn: a module-level function; a cell is ``fn(**args)``.
        experiment: the grid's name (part of the cache key and the progress bar).
        cells: the cells' arguments; or give ``settings`` x ``seeds`` (each cell gets ``seed=``).
        context: fingerprintable description of what else the cells depend on.
        cache: where finished cells are kept (default: the kdlib cache).
        engine: a name from :data:`ENGINES` (default: ``$KDLIB_ENGINE``, else ``"local"``).
        progress: show one progress bar for the grid.

    Returns:
        One row per row a cell returned, with the cell's arguments first; columns a cell returned win over nothing:
        a returned column that repeats an argument must hold the same value.

    Raises:
        ValueError: no cells, an unknown engine, a cell without output, or a non-module-level function.
    """
    if cells is None:
        if not seeds or not settings:
            raise ValueError("give cells, or non-empty settings and seeds")
        cells = [{**setting, "seed": int(seed)} for setting in settings for seed in seeds]
    if not cells:
        raise ValueError("the grid has no cells")
    engine = engine or os.environ.get(ENGINE_ENV, "local")
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; available: {sorted(ENGINES)}")
    cache = cache or Cache()
    identity = function_name(fn)
    grid = [Cell(dict(args)) for args in cells]
    keys = [{"experiment": experiment, "fn": identity, "args": dict(cell.args), "context": context, "version": GRID_VERSION} for cell in grid]
    outputs: list[Any] = [None] * len(grid)
    missing = []
    for position, key in enumerate(keys):
        found, value = cache.lookup("grid", key)
        if found:
            outputs[position] = value
        else:
            missing.append(position)

    def done(index: int, output: Any) -> None:
        position = missing[index]
        cache.store("grid", keys[position], output)
        outputs[position] = output

    if missing:
        ENGINES[engine]().run(fn, [grid[p] for p in missing], done, desc=f"{experiment} ({len(missing)}/{len(grid)} cells to run)", progress=progress)
    return pd.DataFrame([row for cell, output in zip(grid, outputs) for row in _rows(cell, output)])


def _rows(cell: Cell, output: Any) -> list[dict]:
    if isinstance(output, pd.DataFrame):
        output = output.to_dict("records")
    rows = [output] if isinstance(output, Mapping) else list(output or [])
    if not rows:
        raise ValueError(f"cell {cell.label} returned no rows")
    out = []
    for row in rows:
        clash = {k for k in set(row) & set(cell.args) if row[k] != cell.args[k]}
        if clash:
            raise ValueError(f"cell {cell.label} returned columns {sorted(clash)} that contradict its arguments")
        out.append({**cell.args, **row})
    return out
