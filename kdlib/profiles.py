"""The two run profiles: ``quick`` (CI, seconds) and ``full`` (the real reproduction)."""

from __future__ import annotations

import os
import sys
from typing import Mapping, TypeVar

PROFILES = ("quick", "full")
PROFILE_ENV = "KDLIB_PROFILE"

T = TypeVar("T")


def check_profile(profile: str) -> str:
    """Return ``profile`` if it is a known profile, else raise a clear error."""
    if profile not in PROFILES:
        raise ValueError(f"profile must be 'quick' or 'full', got {profile!r}")
    return profile


def resolve_profile(profile: str) -> str:
    """The profile a notebook runs in.

    The notebook's papermill parameter is used unless the environment variable ``KDLIB_PROFILE`` is set;
    the test suite sets it so that nbval re-executes committed (full-profile) notebooks in the quick profile.
    """
    check_profile(profile)
    override = os.environ.get(PROFILE_ENV)
    if override and override != profile:
        check_profile(override)
        print(f"[kdlib] {PROFILE_ENV}={override} overrides profile={profile!r}", file=sys.stderr)
        return override
    return profile


def pick(profile: str, options: Mapping[str, T]) -> T:
    """Select the value for ``profile`` from ``{"quick": ..., "full": ...}``."""
    check_profile(profile)
    missing = [p for p in PROFILES if p not in options]
    if missing:
        raise ValueError(f"options must define every profile, missing {missing}")
    return options[profile]

