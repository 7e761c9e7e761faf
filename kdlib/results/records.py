"""Per-seed records, their mean ± std, and the ``results/NN_name.json`` files."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from kdlib.paths import output_dir
from kdlib.profiles import check_profile
from kdlib.results.grading import Verdict
from kdlib.results.legacy import Claim
from kdlib.results.provenance import provenance

RECORD_FIELDS = ("experiment", "method", "setting", "seed", "metric", "value")


@dataclass(frozen=True)
class Record:
    """One measured number of one seed."""

    experiment: str
    method: str
    setting: str
    seed: int
    metric: str
    value: float


def to_frame(records: Iterable[Record]) -> pd.DataFrame:
    """Records as a tidy DataFrame with the columns of :data:`RECORD_FIELDS`."""
    frame = pd.DataFrame([asdict(r) for r in records], columns=list(RECORD_FIELDS))
    frame["value"] = frame["value"].astype(float)
    return frame


def records_frame(results: Mapping) -> pd.DataFrame:
    """The records of a loaded results file (``json.load`` of ``results/NN_name.json``) as a tidy DataFrame."""
    return to_frame(Record(**r) for r in results["records"])


def aggregate(records: Iterable[Record] | pd.DataFrame, by: Sequence[str] = ("experiment", "setting", "method", "metric")) -> pd.DataFrame:
    """Mean, std (ddof=1) and n of ``value`` over seeds for each group."""
    frame = records if isinstance(records, pd.DataFrame) else to_frame(records)
    if frame.empty:
        raise ValueError("no records to aggregate")
    grouped = frame.groupby(list(by), sort=False)["value"]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def mean_std_table(records: Iterable[Record] | pd.DataFrame, index: str | Sequence[str], columns: str, scale: float = 100.0, digits: int = 2) -> pd.DataFrame:
    """A pivot of "mean ± std" strings (values multiplied by ``scale``, e.g. accuracy in %)."""
    index = [index] if isinstance(index, str) else list(index)
    summary = aggregate(records, by=[*index, columns])
    summary["cell"] = [
        f"{m * scale:.{digits}f} ± {(0.0 if np.isnan(s) else s) * scale:.{digits}f}" for m, s in zip(summary["mean"], summary["std"])
    ]
    return summary.pivot(index=index, columns=columns, values="cell")


def save_results(
    notebook: str,
    profile: str,
    seeds: Sequence[int],
    wall_time_s: float,
    records: Sequence[Record],
    claims: Sequence[Claim] = (),
    extra: dict | None = None,
    verdicts: Sequence[Verdict] | None = None,
) -> Path:
    """Write ``results/<notebook>.json`` (under ``build/quick/`` in the quick profile) and return its path.

    Args:
        notebook: e.g. ``"01_lelp"``.
        profile: ``"quick"`` or ``"full"``.
        seeds, wall_time_s, records, extra: what the run measured.
        claims: the first regime's boolean claims (notebooks not re-run since graded verdicts).
        verdicts: the graded verdicts of :func:`kdlib.results.grade`; the file then stores them as ``claims`` with the
            commit that declared them (``declarations_commit``).

    Raises:
        ValueError: an unknown profile, both ``claims`` and ``verdicts``, or verdicts of another notebook.
    """
    check_profile(profile)
    if claims and verdicts:
        raise ValueError("pass the legacy claims or the graded verdicts, not both")
    payload = {
        "notebook": notebook,
        "profile": profile,
        "seeds": list(seeds),
        "wall_time_s": round(float(wall_time_s), 1),
        "provenance": provenance(),
        "records": [asdict(r) for r in records],
        "claims": [asdict(c) for c in claims],
    }
    if extra:
        payload["extra"] = extra
    if verdicts:
        payload = with_verdicts(payload, verdicts)
    path = output_dir("results", profile) / f"{notebook}.json"
    write_json(path, payload)
    return path


def with_verdicts(results: Mapping, verdicts: Sequence[Verdict]) -> dict:
    """A copy of a results payload whose ``claims`` are the graded verdicts, followed by ``declarations_commit``.

    Raises:
        ValueError: no verdicts, or verdicts of another notebook.
    """
    others = sorted({v.notebook for v in verdicts} - {results["notebook"]})
    if not verdicts or others:
        raise ValueError(f"need verdicts of {results['notebook']}, got {len(verdicts)} (other notebooks: {others})")
    out = {}
    for key, value in results.items():
        if key != "declarations_commit":
            out[key] = [v.to_record() for v in verdicts] if key == "claims" else value
        if key == "claims":
            out["declarations_commit"] = verdicts[0].declarations_commit
    return out


def write_json(path: Path, payload: Mapping) -> None:
    """Write a results payload the way every results file is written (one-space indent, numpy scalars as numbers)."""
    Path(path).write_text(json.dumps(payload, indent=1, default=_jsonable))


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
