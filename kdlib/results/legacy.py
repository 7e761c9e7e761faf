"""The boolean claims of the first regime (``holds`` yes / no), kept until notebooks 01-06 are re-run on graded
verdicts (:mod:`kdlib.results.grading`); the README no longer shows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pandas as pd


@dataclass(frozen=True)
class Claim:
    """A paper's claim checked against our measurement."""

    id: str
    text: str
    paper_value: str
    ours_value: str
    holds: bool


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
