"""A claim is declared before its run: what is tested, how, against which smallest effect of interest.

Each notebook's claims live in a registry module of :mod:`kdlib.claims`, committed before the full run; the results
file records the commit that declared them (:meth:`Declarations.declared_commit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from kdlib.results.power import PowerPlan
from kdlib.results.provenance import file_commit

SESOI_PP = 0.5  # the one project rule: SESOI = min(0.5 pp, |paper effect| / 2) for accuracy claims in pp; 0.5 pp when the paper gives no number
SESOI_RULE = "project rule: min(0.5 pp, |paper effect| / 2)"

Kind = Literal["paper", "control"]
Formula = Literal["verified", "reconstructed", "n/a"]
Test = Literal["difference", "non_inferiority", "trend", "conjunction", "deterministic"]
KINDS: tuple[str, ...] = ("paper", "control")
FORMULAS: tuple[str, ...] = ("verified", "reconstructed", "n/a")
TESTS: tuple[str, ...] = ("difference", "non_inferiority", "trend", "conjunction", "deterministic")


def smallest_effect_of_interest(paper_effect: float | None, unit: str = "pp") -> float:
    """The project's SESOI for an accuracy claim in pp: the smaller of 0.5 pp and half the paper's effect.

    Raises:
        ValueError: a unit other than pp (declare an explicit ``sesoi`` there), or a paper effect of 0.
    """
    if unit != "pp":
        raise ValueError(f"the project SESOI rule covers accuracy claims in pp; declare an explicit sesoi for unit {unit!r}")
    if paper_effect is None:
        return SESOI_PP
    if paper_effect == 0:
        raise ValueError("a paper effect of 0 gives no SESOI; declare an explicit sesoi")
    return min(SESOI_PP, abs(paper_effect) / 2)


@dataclass(frozen=True)
class Declaration:
    """One claim, declared before the run that tests it.

    ``kind`` is ``paper`` for a statement the paper itself makes as the notes cite or quote it ([V] or [S] in their
    legend), ``control`` for our own diagnostics and for expectations the notes mark [R]. ``formula`` is the status of
    the method's formula in the notes ([V]/[S]: verified, [R]: reconstructed). ``direction`` is +1 when the claim says
    the estimate is positive (A beats B), -1 when it says negative; ``paper_effect`` keeps the paper's sign.
    """

    id: str
    statement: str
    kind: Kind
    formula: Formula
    test: Test
    paper_value: str
    replicates: int
    paper_effect: float | None = None
    direction: Literal[1, -1] = 1
    unit: str = "pp"
    sesoi: float | None = None
    sesoi_reason: str = ""
    ceiling: str | None = None
    gate_baseline: str | None = None
    parts: tuple[str, ...] = ()
    out_of_scope: str | None = None
    source: str = ""
    plan: PowerPlan | None = None

    def __post_init__(self) -> None:
        problem = self._problem()
        if problem:
            raise ValueError(f"claim {self.id!r}: {problem}")
        if self.graded and self.test != "deterministic" and self.sesoi is None:
            try:
                smallest_effect_of_interest(self.paper_effect, self.unit)
            except ValueError as error:
                raise ValueError(f"claim {self.id!r}: {error}") from None

    def _problem(self) -> str:
        """What is wrong with the declaration, or an empty string."""
        if not self.id or not self.statement:
            return "needs an id and a statement"
        for field, value, allowed in (("kind", self.kind, KINDS), ("formula", self.formula, FORMULAS), ("test", self.test, TESTS)):
            if value not in allowed:
                return f"{field} must be one of {allowed}, got {value!r}"
        if self.direction not in (1, -1):
            return f"direction must be 1 or -1, got {self.direction!r}"
        if not isinstance(self.replicates, int) or self.replicates < 1:
            return f"replicates must be an integer >= 1, got {self.replicates!r}"
        if self.test == "conjunction" and len(self.parts) < 2:
            return f"a conjunction needs at least 2 parts, got {self.parts}"
        if self.test != "conjunction" and self.parts:
            return f"only a conjunction has parts (test {self.test!r})"
        if self.test == "deterministic" and (self.sesoi is not None or self.ceiling is not None):
            return "a deterministic check takes no SESOI and no ceiling"
        if self.sesoi is not None and (self.sesoi <= 0 or not self.sesoi_reason):
            return f"an explicit sesoi must be > 0 and give its sesoi_reason, got {self.sesoi} ({self.sesoi_reason!r})"
        if (self.ceiling is None) != (self.gate_baseline is None):
            return "a gated claim names both its ceiling and its gate_baseline"
        if self.plan is not None and self.plan.replicates != self.replicates:
            return f"replicates ({self.replicates}) differ from the power plan's ({self.plan.replicates})"
        return ""

    @property
    def graded(self) -> bool:
        """False for a claim declared out of scope here (listed, never graded)."""
        return self.out_of_scope is None

    @property
    def resolved_sesoi(self) -> float | None:
        """The SESOI the claim is graded against (None for deterministic and out-of-scope claims)."""
        if not self.graded or self.test == "deterministic":
            return None
        return self.sesoi if self.sesoi is not None else smallest_effect_of_interest(self.paper_effect, self.unit)

    @property
    def sesoi_source(self) -> str:
        """Why the SESOI is what it is: the declared reason, or the project rule."""
        return self.sesoi_reason if self.sesoi is not None else SESOI_RULE


@dataclass(frozen=True)
class Declarations:
    """A notebook's claim registry (one module of :mod:`kdlib.claims`, whose file is ``path``)."""

    notebook: str
    claims: tuple[Declaration, ...]
    path: Path

    def __post_init__(self) -> None:
        if not self.claims:
            raise ValueError(f"{self.notebook}: declares no claim")
        ids = [c.id for c in self.claims]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"{self.notebook}: claim ids must be unique, repeated: {duplicates}")

    def __getitem__(self, claim_id: str) -> Declaration:
        for claim in self.claims:
            if claim.id == claim_id:
                return claim
        raise KeyError(f"claim {claim_id!r} has no declaration in {self.notebook}")

    def __contains__(self, claim_id: object) -> bool:
        return any(c.id == claim_id for c in self.claims)

    def declared_commit(self) -> str:
        """The last git commit that touched the registry module (``-dirty`` if the file differs from it)."""
        return file_commit(self.path)
