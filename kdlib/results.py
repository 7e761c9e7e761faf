"""Per-seed records, aggregation, paired comparisons, claims and the ``results/NN_name.json`` files."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from kdlib.paths import output_dir, repo_root
from kdlib.profiles import check_profile

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


@dataclass(frozen=True)
class Claim:
    """A paper's claim checked against our measurement."""

    id: str
    text: str
    paper_value: str
    ours_value: str
    holds: bool


@dataclass(frozen=True)
class PairedComparison:
    """``a - b`` over seeds run in pairs (same data, same initialisation), with a 95% t-interval."""

    a: str
    b: str
    n: int
    mean_diff: float
    std_diff: float
    ci_low: float
    ci_high: float

    @property
    def a_beats_b(self) -> bool:
        """True when the whole 95% interval of the paired difference lies above zero."""
        return bool(self.ci_low > 0)

    def __str__(self) -> str:
        return f"{self.a} - {self.b} = {self.mean_diff:+.4f} (95% CI {self.ci_low:+.4f} .. {self.ci_high:+.4f}, n={self.n})"

    def points(self) -> str:
        """The difference and its interval in percentage points of accuracy, e.g. ``+1.20 pp [+0.31, +2.09]``."""
        return f"{100 * self.mean_diff:+.2f} pp [{100 * self.ci_low:+.2f}, {100 * self.ci_high:+.2f}]"


def to_frame(records: Iterable[Record]) -> pd.DataFrame:
    """Records as a tidy DataFrame with the columns of :data:`RECORD_FIELDS`."""
    frame = pd.DataFrame([asdict(r) for r in records], columns=list(RECORD_FIELDS))
    frame["value"] = frame["value"].astype(float)
    return frame


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


def paired_comparison(records: Iterable[Record] | pd.DataFrame, a: str, b: str, confidence: float = 0.95, **where: str) -> PairedComparison:
    """Compare methods ``a`` and ``b`` on seeds present for both, within the records matching ``where``.

    ``confidence`` sets the t-interval's level (e.g. ``1 - 0.05 / m`` for a Bonferroni correction over m tests).

    Raises:
        ValueError: no seed has both methods.
    """
    frame = records if isinstance(records, pd.DataFrame) else to_frame(records)
    for column, value in where.items():
        frame = frame[frame[column] == value]
    per_seed = frame.pivot_table(index=["setting", "seed"] if "setting" not in where else ["seed"], columns="method", values="value")
    if a not in per_seed or b not in per_seed:
        raise ValueError(f"methods {a!r} and {b!r} must both appear in the records (found {list(per_seed.columns)})")
    diff = (per_seed[a] - per_seed[b]).dropna().to_numpy()
    if len(diff) == 0:
        raise ValueError(f"no seed has both {a!r} and {b!r}")
    n, mean = len(diff), float(diff.mean())
    std = float(diff.std(ddof=1)) if n > 1 else float("nan")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1) * std / np.sqrt(n)) if n > 1 else float("nan")
    return PairedComparison(a, b, n, mean, std, mean - half, mean + half)


def _test_accuracy(records: Iterable[Record] | pd.DataFrame, experiments: Sequence[str], metric: str = "test_accuracy") -> pd.DataFrame:
    frame = records if isinstance(records, pd.DataFrame) else to_frame(records)
    return frame[(frame.metric == metric) & frame.experiment.isin(list(experiments))]


def pooled_comparison(
    records: Iterable[Record] | pd.DataFrame, a: str, b: str, experiments: Sequence[str], confidence: float = 0.95, metric: str = "test_accuracy"
) -> PairedComparison:
    """``a - b`` in ``metric`` (test accuracy by default) over every (experiment, seed) pair of ``experiments``: seeds
    pair within an experiment, and the pairs of several experiments are pooled."""
    frame = _test_accuracy(records, experiments, metric)
    return paired_comparison(frame.assign(setting=frame.experiment), a, b, confidence=confidence)


def headroom_comparison(
    records: Iterable[Record] | pd.DataFrame, method: str, baseline: str, ceiling: str, experiments: Sequence[str], fraction: float = 0.5,
    metric: str = "test_accuracy",
) -> PairedComparison:
    """``method - (baseline + fraction * (ceiling - baseline))`` in ``metric``, paired per (experiment, seed) and
    pooled: above zero means ``method`` recovers more than ``fraction`` of the ceiling's gain over the baseline."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    per_seed = _test_accuracy(records, experiments, metric).pivot_table(index=["experiment", "seed"], columns="method", values="value")
    missing = {method, baseline, ceiling} - set(per_seed.columns)
    if missing:
        raise ValueError(f"methods {sorted(missing)} do not appear in the records of {list(experiments)}")
    target = per_seed[baseline] + fraction * (per_seed[ceiling] - per_seed[baseline])
    both = pd.concat({method: per_seed[method], "target": target}, axis=1).dropna().reset_index()
    long = both.melt(id_vars=["experiment", "seed"], var_name="method", value_name="value").assign(setting=lambda f: f.experiment)
    comparison = paired_comparison(long, method, "target")
    return PairedComparison(method, f"{baseline} + {fraction:g} ({ceiling} - {baseline})", *[getattr(comparison, f) for f in ("n", "mean_diff", "std_diff", "ci_low", "ci_high")])


def per_seed_differences(records: Iterable[Record] | pd.DataFrame, a: str, b: str, experiments: Sequence[str]) -> np.ndarray:
    """The paired test-accuracy differences ``a - b``, one per (experiment, seed) of ``experiments``."""
    per_seed = _test_accuracy(records, experiments).pivot_table(index=["experiment", "seed"], columns="method", values="value")
    return (per_seed[a] - per_seed[b]).dropna().to_numpy()


def difference_table(
    records: Iterable[Record] | pd.DataFrame, pairs: Sequence[tuple[str, str]], experiments: Sequence[str], pooled: Sequence[str] = (),
    metric: str = "test_accuracy",
) -> pd.DataFrame:
    """Paired ``a - b`` in ``metric`` as "diff [95% CI]" in pp: rows "a − b", columns experiments (+ "pooled").

    Cells where an experiment lacks one of the two methods are left empty.
    """
    columns = [(e, [e]) for e in experiments] + ([("pooled", list(pooled))] if pooled else [])
    table = {}
    for a, b in pairs:
        row = {}
        for label, subset in columns:
            try:
                c = pooled_comparison(records, a, b, subset, metric=metric)
            except ValueError:
                continue
            row[label] = f"{100 * c.mean_diff:+.2f} [{100 * c.ci_low:+.2f}, {100 * c.ci_high:+.2f}]"
        table[f"{a} − {b}"] = row
    return pd.DataFrame.from_dict(table, orient="index").reindex(columns=[label for label, _ in columns]).fillna("")


def welch_difference(first: Sequence[float], second: Sequence[float]) -> dict[str, float]:
    """``mean(first) - mean(second)`` for two independent samples, with a Welch 95% t-interval."""
    first, second = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if len(first) == 0 or len(second) == 0:
        raise ValueError("both samples must be non-empty")
    change = float(first.mean() - second.mean())
    var_first = first.var(ddof=1) / len(first) if len(first) > 1 else np.nan
    var_second = second.var(ddof=1) / len(second) if len(second) > 1 else np.nan
    se = float(np.sqrt(var_first + var_second))
    if not np.isfinite(se) or se == 0:
        return {"difference": change, "ci_low": float("nan"), "ci_high": float("nan")}
    dof = se**4 / (var_first**2 / (len(first) - 1) + var_second**2 / (len(second) - 1))
    half = float(stats.t.ppf(0.975, dof) * se)
    return {"difference": change, "ci_low": change - half, "ci_high": change + half}


def provenance() -> dict:
    """Git commit (``-dirty`` when the code differs from it; notebooks, results and figures are outputs), versions."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, check=True).stdout.strip()
        code = ["kdlib", "pyproject.toml", "reproduce.sh"]
        dirty = subprocess.run(["git", "status", "--porcelain", "--", *code], cwd=repo_root(), capture_output=True, text=True).stdout.strip()
        commit += "-dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    versions = {"python": platform.python_version()}
    for package in ("torch", "numpy", "scipy", "pandas", "scikit-learn", "transformers", "seaborn"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"git_commit": commit, "versions": versions, "platform": platform.platform(), "argv0": Path(sys.argv[0]).name}


def save_results(
    notebook: str,
    profile: str,
    seeds: Sequence[int],
    wall_time_s: float,
    records: Sequence[Record],
    claims: Sequence[Claim],
    extra: dict | None = None,
) -> Path:
    """Write ``results/<notebook>.json`` (under ``build/quick/`` in the quick profile) and return its path."""
    check_profile(profile)
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
    path = output_dir("results", profile) / f"{notebook}.json"
    path.write_text(json.dumps(payload, indent=1, default=_jsonable))
    return path


def _jsonable(value):
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def claims_table(claims: Sequence[Claim]) -> pd.DataFrame:
    """Claims as a table for the notebook's claims cell."""
    return pd.DataFrame(
        [{"claim": c.id, "statement": c.text, "paper": c.paper_value, "ours": c.ours_value, "holds": "yes" if c.holds else "NO"} for c in claims]
    ).set_index("claim")


def report_claims(claims: Sequence[Claim], profile: str) -> pd.DataFrame:
    """Print a loud line for every claim that does not hold in the full profile; return the claims table."""
    failed = [c for c in claims if not c.holds]
    if profile == "full":
        for claim in failed:
            print(f"CLAIM NOT REPRODUCED [{claim.id}] {claim.text}: paper {claim.paper_value}, ours {claim.ours_value}")
    else:
        print(f"quick profile: {len(claims) - len(failed)}/{len(claims)} claims hold on the reduced setting (not a verdict)")
    return claims_table(claims)


def readme_table(results_dir: Path | None = None) -> str:
    """The README's results table in Markdown, built from every ``results/*.json`` of the full profile."""
    results_dir = results_dir or repo_root() / "results"
    rows = ["| notebook | claim | paper | ours | holds |", "|---|---|---|---|---|"]
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        for claim in data["claims"]:
            rows.append(
                f"| {data['notebook']} | {claim['text']} | {claim['paper_value']} | {claim['ours_value']} | {'yes' if claim['holds'] else '**no**'} |"
            )
    return "\n".join(rows)


def update_readme(readme: Path | None = None) -> bool:
    """Replace the text between the results markers in README.md; returns whether it changed."""
    readme = readme or repo_root() / "README.md"
    start, end = "<!-- results:start -->", "<!-- results:end -->"
    text = readme.read_text()
    if start not in text or end not in text:
        raise ValueError(f"{readme} lacks the markers {start} ... {end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    new = f"{head}{start}\n{readme_table()}\n{end}{tail}"
    readme.write_text(new)
    return new != text


if __name__ == "__main__":
    changed = update_readme()
    print("README results table " + ("updated" if changed else "unchanged"))
