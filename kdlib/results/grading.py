"""Graded verdicts: every declared claim says what its evidence supports.

In the paper's direction, on the claim's two-sided interval [lo, hi] (Holm-adjusted over the graded paper claims of
one notebook, plain 95 % for controls):

* **reproduced**: lo > 0 (non-inferiority: lo > -SESOI);
* **contradicted**: not reproduced, and hi < SESOI: any effect is at most negligible, or significant the other way
  (non-inferiority: hi < -SESOI);
* **inconclusive**: neither; the verdict records the replicates per task that would settle it;
* **not testable here**: the headroom gate left no task;
* **out of scope here**: declared so (a scale this machine cannot reach); listed, never graded.

A conjunction grades each part as a difference and needs every part; its estimate is the weakest part's. A pooled
claim is decided by the equal-weight mean of its tasks, but is not reproduced while any task is contradicted.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Mapping, Union

import numpy as np

from kdlib.results.declarations import Declaration, Declarations
from kdlib.results.estimates import Deterministic, Estimate, pooled
from kdlib.results.power import replicates_for

REPRODUCED, CONTRADICTED, INCONCLUSIVE = "reproduced", "contradicted", "inconclusive"
NOT_TESTABLE, OUT_OF_SCOPE = "not testable here", "out of scope here"
VERDICTS = (REPRODUCED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE, OUT_OF_SCOPE)
ALPHA = 0.05
GATE_CONFIDENCE = 0.95

TaskEstimates = Mapping[str, Estimate]
Evidence = Union[TaskEstimates, Mapping[str, TaskEstimates], Deterministic]  # by test: tasks, parts -> tasks, or a check
GateEstimates = Union[Mapping[str, Union[Estimate, None]], Mapping[str, Mapping[str, Union[Estimate, None]]]]  # the evidence's shape


def classify(test: str, low: float, high: float, sesoi: float) -> str:
    """The verdict of an interval [low, high] in the paper's direction (conjunction parts are differences)."""
    if test == "non_inferiority":
        if low > -sesoi:
            return REPRODUCED
        return CONTRADICTED if high < -sesoi else INCONCLUSIVE
    if low > 0:
        return REPRODUCED
    # high < SESOI also covers high < 0 (significant the other way)
    return CONTRADICTED if high < sesoi else INCONCLUSIVE


def gate(ceiling_minus_baseline_on_validation: Mapping[str, Estimate], sesoi: float) -> tuple[list[str], list[str]]:
    """The headroom gate: a task enters iff the lower end of its ceiling's 95 % gain over the baseline is >= SESOI.

    Returns:
        (kept, dropped) task names, in the mapping's order.
    """
    kept, dropped = [], []
    for task, estimate in ceiling_minus_baseline_on_validation.items():
        (kept if estimate.interval(GATE_CONFIDENCE)[0] >= sesoi else dropped).append(task)
    return kept, dropped


def holm_levels(p_values: Mapping[str, float], alpha: float = ALPHA) -> dict[str, float]:
    """Holm's confidence levels: with the p-values sorted ascending, rank k (0-based) of m gets 1 - alpha / (m - k)."""
    ranked = sorted(p_values, key=lambda claim_id: p_values[claim_id])
    return {claim_id: 1 - alpha / (len(ranked) - k) for k, claim_id in enumerate(ranked)}


@dataclass(frozen=True)
class Result:
    """One task's (or one part's) estimate, interval and verdict at the claim's level."""

    label: str
    estimate: float
    ci_low: float
    ci_high: float
    verdict: str
    n: int


@dataclass(frozen=True)
class Verdict:
    """A graded claim: its declaration, the evidence's estimate and interval, and what they support.

    ``confidence`` is the (Holm-adjusted) level of the interval; ``tasks`` holds the per-task results at that level
    (``part: task`` for a conjunction, whose parts are in ``part_results``); ``gate`` says how the headroom gate was
    applied and ``gated_out`` which tasks it dropped.
    """

    notebook: str
    declaration: Declaration
    verdict: str
    sesoi: float | None
    ours: str
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None
    p_value: float | None = None
    size_check: str = "n/a"
    tasks: tuple[Result, ...] = ()
    part_results: tuple[Result, ...] = ()
    gated_out: tuple[str, ...] = ()
    gate: str = ""
    replicates_to_settle: int | None = None
    provisional: bool = False
    declarations_commit: str = "unknown"

    def to_record(self) -> dict:
        """The claim as a results file stores it: the declaration's fields (SESOI resolved), then the verdict's."""
        verdict = asdict(self)
        for key in ("notebook", "declaration", "declarations_commit", "sesoi"):
            verdict.pop(key)
        return {**asdict(self.declaration), "sesoi": self.sesoi, "sesoi_reason": self.declaration.sesoi_source, **verdict}


@dataclass
class _Prepared:
    """A claim's evidence after validation and the gate."""

    declaration: Declaration
    parts: dict[str, dict[str, Estimate]] = field(default_factory=dict)  # part label ("" unless a conjunction) -> tasks
    check: Deterministic | None = None
    gated_out: list[str] = field(default_factory=list)
    gate: str = ""

    @property
    def testable(self) -> bool:
        return bool(self.parts) and all(self.parts.values())

    def p_value(self) -> float:
        """Two-sided p-value against the null boundary (0; -SESOI for non-inferiority); a conjunction's largest."""
        claim = self.declaration
        null = -claim.direction * claim.resolved_sesoi if claim.test == "non_inferiority" else 0.0
        return max(pooled(tasks).p_value(null) for tasks in self.parts.values())


@dataclass(frozen=True)
class _Outcome:
    verdict: str
    confidence: float
    claim: Result
    parts: tuple[Result, ...]
    tasks: tuple[Result, ...]


def grade(declarations: Declarations, evidence: Mapping[str, Evidence], gates: Mapping[str, GateEstimates] | None = None,
          provisional: bool = False) -> list[Verdict]:
    """Grade every declared claim of a notebook on its evidence.

    Args:
        declarations: the notebook's registry (:mod:`kdlib.claims`).
        evidence: per claim id, by test: ``{task: Estimate}`` (difference, non_inferiority, trend; several tasks are
            pooled with equal weights), ``{part: {task: Estimate}}`` (conjunction) or :class:`Deterministic`.
            Out-of-scope claims take none.
        gates: for claims that declare a ceiling, the ceiling's gain over the gate baseline on validation, in the
            shape of the claim's evidence; ``None`` for a task without a ceiling (it enters ungated). A gated claim
            without an entry is graded ungated and says so.
        provisional: the claims were declared after the data (and any gate measured on the same replicates).

    Returns:
        One verdict per declared claim, in declaration order.

    Raises:
        ValueError: evidence or a gate for an undeclared claim, a declared claim without evidence, evidence of the
            wrong shape, a gate for a claim without a ceiling, or a gate that misses one of the claim's tasks.
    """
    gates = gates or {}
    for claim_id in [*evidence, *gates]:
        if claim_id not in declarations:
            raise ValueError(f"claim {claim_id!r} has no declaration in {declarations.notebook}")
    prepared = {c.id: _prepare(c, declarations.notebook, evidence, gates, provisional) for c in declarations.claims}
    testable = {i: p for i, p in prepared.items() if p.testable}
    levels = holm_levels({i: p.p_value() for i, p in testable.items() if p.declaration.kind == "paper"})
    outcomes = {i: _evaluate(p, levels.get(i, 1 - ALPHA)) for i, p in testable.items()}
    # Holm's stopping rule: once a claim (in p-value order) is not reproduced, no later one may be
    stopped = False
    for claim_id in levels:  # holm_levels lists the claims in rank order
        if stopped and outcomes[claim_id].verdict == REPRODUCED:
            outcomes[claim_id] = replace(outcomes[claim_id], verdict=INCONCLUSIVE)
        stopped = stopped or outcomes[claim_id].verdict != REPRODUCED
    commit = declarations.declared_commit()
    return [_verdict(declarations.notebook, p, outcomes.get(i), provisional, commit) for i, p in prepared.items()]


def _tasks(claim: Declaration, given: object, what: str, allow_none: bool = False) -> dict[str, Estimate | None]:
    if not isinstance(given, Mapping) or not given or not all(isinstance(e, Estimate) or (allow_none and e is None) for e in given.values()):
        raise ValueError(f"claim {claim.id!r}: {what} must map each task to an Estimate")
    return dict(given)


def _parts(claim: Declaration, given: object, what: str, allow_none: bool = False) -> dict[str, dict[str, Estimate | None]]:
    """Evidence (or a gate) as part label -> task -> estimate; a claim that is not a conjunction has one part, ""."""
    if claim.test != "conjunction":
        return {"": _tasks(claim, given, what, allow_none)}
    if not isinstance(given, Mapping) or set(given) != set(claim.parts):
        found = sorted(given) if isinstance(given, Mapping) else type(given).__name__
        raise ValueError(f"claim {claim.id!r}: {what} of a conjunction must map its parts {list(claim.parts)} to tasks, got {found}")
    return {part: _tasks(claim, given[part], f"{what} of part {part!r}", allow_none) for part in claim.parts}


def _prepare(claim: Declaration, notebook: str, evidence: Mapping[str, Evidence], gates: Mapping[str, GateEstimates],
             provisional: bool) -> _Prepared:
    if not claim.graded:
        if claim.id in evidence or claim.id in gates:
            raise ValueError(f"claim {claim.id!r} is out of scope here and takes no evidence")
        return _Prepared(claim)
    if claim.id not in evidence:
        raise ValueError(f"claim {claim.id!r} is declared in {notebook} but has no evidence")
    if claim.id in gates and claim.ceiling is None:
        raise ValueError(f"claim {claim.id!r} declares no ceiling, so it takes no gate")
    if claim.test == "deterministic":
        if not isinstance(evidence[claim.id], Deterministic):
            raise ValueError(f"claim {claim.id!r}: a deterministic check's evidence is a Deterministic(holds, value)")
        return _Prepared(claim, check=evidence[claim.id])
    prepared = _Prepared(claim, parts=_parts(claim, evidence[claim.id], "evidence"))
    if claim.ceiling is not None:
        if claim.id in gates:
            _apply_gate(prepared, _parts(claim, gates[claim.id], "the gate", allow_none=True), provisional)
        else:
            prepared.gate = f"NOT GATED: no validation measurement of {claim.ceiling} − {claim.gate_baseline} was given"
    return prepared


def _apply_gate(prepared: _Prepared, measured: dict[str, dict[str, Estimate | None]], provisional: bool) -> None:
    claim = prepared.declaration
    gated = ungated = 0
    for label, tasks in prepared.parts.items():
        extra, missing = set(measured[label]) - set(tasks), set(tasks) - set(measured[label])
        if extra or missing:
            raise ValueError(f"claim {claim.id!r}: the gate must cover exactly the evidence's tasks "
                             f"(missing {sorted(missing)}, extra {sorted(extra)})")
        with_ceiling = {task: g for task, g in measured[label].items() if g is not None}
        _, dropped = gate(with_ceiling, claim.resolved_sesoi)
        gated, ungated = gated + len(with_ceiling), ungated + len(tasks) - len(with_ceiling)
        prepared.parts[label] = {task: e for task, e in tasks.items() if task not in dropped}
        prepared.gated_out += [f"{task} ({label})" if label else task for task in dropped]
    note = (f"gate: {claim.ceiling} − {claim.gate_baseline} on validation, lower 95 % end ≥ SESOI: "
            f"kept {gated - len(prepared.gated_out)} of {gated} tasks")
    if ungated:
        note += f"; {ungated} without a ceiling entered ungated"
    prepared.gate = note + ("; gate from the same replicates (provisional)" if provisional else "")


def _result(label: str, estimate: Estimate, test: str, direction: int, sesoi: float, confidence: float) -> Result:
    low, high = estimate.interval(confidence)
    verdict = classify(test, *sorted((direction * low, direction * high)), sesoi)
    return Result(label, estimate.mean, low, high, verdict, estimate.n)


def _evaluate(prepared: _Prepared, confidence: float) -> _Outcome:
    claim = prepared.declaration
    test = "difference" if claim.test == "conjunction" else claim.test
    parts, tasks = [], []
    for label, estimates in prepared.parts.items():
        task_results = [_result(task, e, test, claim.direction, claim.resolved_sesoi, confidence) for task, e in estimates.items()]
        part = _result(label or ("pooled" if len(estimates) > 1 else next(iter(estimates))), pooled(estimates), test, claim.direction,
                       claim.resolved_sesoi, confidence)
        if len(estimates) > 1 and part.verdict == REPRODUCED and any(r.verdict == CONTRADICTED for r in task_results):
            part = replace(part, verdict=INCONCLUSIVE)
        parts.append(part)
        tasks += [replace(r, label=f"{label}: {r.label}") if label else r for r in task_results]
    verdicts = {p.verdict for p in parts}
    verdict = REPRODUCED if verdicts == {REPRODUCED} else CONTRADICTED if CONTRADICTED in verdicts else INCONCLUSIVE
    weakest = min(parts, key=lambda p: min(claim.direction * p.ci_low, claim.direction * p.ci_high))
    return _Outcome(verdict, confidence, weakest, tuple(parts) if claim.test == "conjunction" else (), tuple(tasks))


def _size_check(claim: Declaration, result: Result) -> str:
    """Where the paper's effect lies against our interval, in the paper's direction."""
    if claim.paper_effect is None:
        return "n/a"
    low, high = sorted((claim.direction * result.ci_low, claim.direction * result.ci_high))
    effect = claim.direction * claim.paper_effect
    return "below" if effect < low else "above" if effect > high else "inside"


def _replicates_to_settle(prepared: _Prepared, outcome: _Outcome) -> int:
    """Replicates per task for a 95 % half-width <= 0.7 x SESOI, from the observed per-replicate spread of the parts
    that are not reproduced yet (the upper 80 % bound of their pooled spread)."""
    unsettled = {p.label for p in outcome.parts if p.verdict != REPRODUCED}
    needs = []
    for label, estimates in prepared.parts.items():
        if outcome.parts and label not in unsettled:
            continue
        spread = math.sqrt(np.mean([e.spread**2 for e in estimates.values()]))
        n_pilot = sum(e.n - 1 for e in estimates.values()) + 1
        needs.append(replicates_for(spread, n_pilot, prepared.declaration.resolved_sesoi, tasks=len(estimates)))
    return max(needs)


def _interval_text(result: Result, unit: str) -> str:
    return f"{result.estimate:+.2f} {unit} [{result.ci_low:+.2f}, {result.ci_high:+.2f}]"


def _ours(prepared: _Prepared, outcome: _Outcome) -> str:
    claim = prepared.declaration
    replicates = "replicates" if claim.test == "trend" else "pairs"

    def counted(estimates: Mapping[str, Estimate]) -> str:
        return f"{len(estimates)} task{'s' if len(estimates) > 1 else ''}, {sum(e.n for e in estimates.values())} {replicates}"

    if claim.test != "conjunction":
        return f"{_interval_text(outcome.claim, claim.unit)}, {counted(prepared.parts[''])}"
    return "; ".join(f"{p.label} {_interval_text(p, claim.unit)} ({counted(prepared.parts[p.label])}"
                     f"{', weakest' if p.label == outcome.claim.label else ''})" for p in outcome.parts)


def _verdict(notebook: str, prepared: _Prepared, outcome: _Outcome | None, provisional: bool, commit: str) -> Verdict:
    claim = prepared.declaration
    common = dict(notebook=notebook, declaration=claim, sesoi=claim.resolved_sesoi, gated_out=tuple(prepared.gated_out), gate=prepared.gate,
                  provisional=provisional, declarations_commit=commit)
    if not claim.graded:
        return Verdict(verdict=OUT_OF_SCOPE, ours=f"not run: {claim.out_of_scope}", **common)
    if prepared.check is not None:
        return Verdict(verdict=REPRODUCED if prepared.check.holds else CONTRADICTED, ours=prepared.check.value, **common)
    if outcome is None:
        return Verdict(verdict=NOT_TESTABLE, ours=f"every task gated out ({', '.join(prepared.gated_out)})", **common)
    result = outcome.claim
    return Verdict(
        verdict=outcome.verdict, ours=_ours(prepared, outcome), estimate=result.estimate, ci_low=result.ci_low, ci_high=result.ci_high,
        confidence=outcome.confidence, p_value=prepared.p_value(), size_check=_size_check(claim, result), tasks=outcome.tasks,
        part_results=outcome.parts, replicates_to_settle=_replicates_to_settle(prepared, outcome) if outcome.verdict == INCONCLUSIVE else None,
        **common,
    )
