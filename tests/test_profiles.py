import pytest

from kdlib.profiles import PROFILE_ENV, check_profile, pick, resolve_profile


def test_check_profile_rejects_unknown():
    assert check_profile("quick") == "quick"
    with pytest.raises(ValueError, match="profile must be 'quick' or 'full', got 'fast'"):
        check_profile("fast")


def test_environment_overrides_parameter(monkeypatch):
    monkeypatch.delenv(PROFILE_ENV, raising=False)
    assert resolve_profile("full") == "full"
    monkeypatch.setenv(PROFILE_ENV, "quick")
    assert resolve_profile("full") == "quick"
    monkeypatch.setenv(PROFILE_ENV, "fast")
    with pytest.raises(ValueError, match="fast"):
        resolve_profile("full")


def test_pick_requires_every_profile():
    assert pick("quick", {"quick": 1, "full": 2}) == 1
    with pytest.raises(ValueError, match="missing"):
        pick("full", {"quick": 1})
