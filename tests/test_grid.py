import pytest

from kdlib.cache import Cache
from kdlib.grid import run_grid

CALLS = []


def cell(method, seed, n):
    CALLS.append((method, seed, n))
    return {"acc": seed + n / 100, "loss": 1.0}


def test_grid_records_and_resume(tmp_path):
    CALLS.clear()
    cache = Cache(tmp_path)
    records = run_grid(cell, experiment="e", methods=["a", "b"], seeds=[0, 1, 2], settings=[{"n": 10}, {"n": 20}], cache=cache)
    assert len(records) == 2 * 3 * 2 * 2 and len(CALLS) == 12
    assert {r.setting for r in records} == {"n=10", "n=20"}
    assert [r.value for r in records if r.method == "b" and r.seed == 2 and r.setting == "n=20" and r.metric == "acc"] == [2.2]
    run_grid(cell, experiment="e", methods=["a", "b", "c"], seeds=[0, 1, 2], settings=[{"n": 10}, {"n": 20}], cache=cache)
    assert len(CALLS) == 18  # only the new method's cells ran
    run_grid(cell, experiment="e", methods=["a"], seeds=[0], settings=[{"n": 10}], cache=cache, context={"teacher": "v2"})
    assert len(CALLS) == 19  # a changed context re-runs


def test_grid_errors(tmp_path):
    with pytest.raises(ValueError, match="non-empty"):
        run_grid(cell, experiment="e", methods=[], seeds=[0], cache=Cache(tmp_path))
    with pytest.raises(ValueError, match="unknown engine"):
        run_grid(cell, experiment="e", methods=["a"], seeds=[0], settings=[{"n": 1}], cache=Cache(tmp_path), engine="slurm")
