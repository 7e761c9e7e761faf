import pandas as pd
import pytest

from kdlib.cache import Cache
from kdlib.grid import run_grid

CALLS = []


def cell(n, seed):
    CALLS.append((n, seed))
    return [{"method": m, "acc": seed + n / 100 + (m == "b")} for m in ("a", "b")]  # one row per student of a stack


def single_row(n, seed):
    return {"acc": n + seed}


def test_grid_rows_resume_and_context(tmp_path):
    CALLS.clear()
    cache = Cache(tmp_path)
    frame = run_grid(cell, experiment="e", settings=[{"n": 10}, {"n": 20}], seeds=[0, 1, 2], cache=cache, progress=False)
    assert len(frame) == 2 * 3 * 2 and len(CALLS) == 6
    assert list(frame.columns) == ["n", "seed", "method", "acc"]
    assert frame.query("method == 'b' and seed == 2 and n == 20").acc.tolist() == [3.2]
    run_grid(cell, experiment="e", settings=[{"n": 10}, {"n": 20}, {"n": 30}], seeds=[0, 1, 2], cache=cache, progress=False)
    assert len(CALLS) == 9  # only the new setting's cells ran
    again = run_grid(cell, experiment="e", cells=[{"n": 10, "seed": 0}], cache=cache, context={"teacher": "v2"}, progress=False)
    assert len(CALLS) == 10 and len(again) == 2  # a changed context re-runs
    one = run_grid(single_row, experiment="s", cells=[{"n": 1, "seed": 0}], cache=cache, progress=False)
    pd.testing.assert_frame_equal(one, pd.DataFrame([{"n": 1, "seed": 0, "acc": 1}]))


def contradicts(n, seed):
    return {"n": n + 1}


def test_grid_errors(tmp_path):
    with pytest.raises(ValueError, match="non-empty"):
        run_grid(cell, experiment="e", seeds=[], cache=Cache(tmp_path))
    with pytest.raises(ValueError, match="unknown engine"):
        run_grid(cell, experiment="e", seeds=[0], settings=[{"n": 1}], cache=Cache(tmp_path), engine="slurm")
    with pytest.raises(ValueError, match="module-level"):
        run_grid(lambda n, seed: {}, experiment="e", seeds=[0], settings=[{"n": 1}], cache=Cache(tmp_path))
    with pytest.raises(ValueError, match="contradict"):
        run_grid(contradicts, experiment="e", seeds=[0], settings=[{"n": 1}], cache=Cache(tmp_path), progress=False)
