"""The Ray engine on a local 2-CPU cluster: the same records as the local engine, a killed worker is retried, and a
re-run after an interrupted run computes only the missing cells."""

import os
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the Ray engine is an optional extra: pip install -e '.[ray]'")

from kdlib.cache import Cache  # noqa: E402
from kdlib.grid import run_grid  # noqa: E402
from kdlib.ray_engine import CellFailed, RayEngine  # noqa: E402


def small_training(n: int, seed: int) -> list[dict]:
    """A real (tiny) training run: a deterministic function of its arguments."""
    import torch

    from kdlib.distill import get_objective
    from kdlib.models import MLP
    from kdlib.train import TrainConfig, TrainSet, evaluate, fit

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] > 0).long()
    torch.manual_seed(seed)
    model = MLP(4, 2, hidden=(8,))
    fit(model, get_objective("ce"), TrainSet(x, y), config=TrainConfig(epochs=3, batch_size=16, lr=1e-2, patience=None), seed=seed, progress=False)
    return [{"method": "mlp", "accuracy": evaluate(model, x, y)}]


def dies_once(n: int, seed: int, marker_dir: str) -> dict:
    """Kills its worker process on its first attempt (a fault injected mid-cell), then succeeds."""
    marker = Path(marker_dir) / f"{n}-{seed}"
    if not marker.exists():
        marker.write_text("attempted")
        os._exit(1)
    return {"value": n * 10 + seed}


def counted(n: int, seed: int, marker_dir: str, broken: int) -> dict:
    """Records every computation in ``marker_dir``; fails on every attempt for ``n == broken``."""
    (Path(marker_dir) / f"{n}-{seed}-{len(list(Path(marker_dir).iterdir()))}").write_text("computed")
    if n == broken:
        raise RuntimeError(f"cell n={n} is broken")
    return {"value": n + seed}


@pytest.fixture(scope="module", autouse=True)
def local_cluster():
    options = dict(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ray.init(**options)
    except Exception:  # Ray waits a fixed 30 s for its raylet; on a loaded machine the first start can miss that
        ray.shutdown()
        ray.init(**options)
    yield
    ray.shutdown()


def test_ray_gives_the_records_of_the_local_engine(tmp_path):
    grid = dict(experiment="tiny", settings=[{"n": n} for n in (16, 24, 32, 40)], seeds=[0, 1, 2, 3], progress=False)
    local = run_grid(small_training, cache=Cache(tmp_path / "local"), engine="local", **grid)
    remote = run_grid(small_training, cache=Cache(tmp_path / "ray"), engine="ray", **grid)
    assert len(local) == 16 and local.equals(remote)


def test_a_killed_worker_is_retried_and_gives_the_same_records(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    grid = dict(experiment="faults", settings=[{"n": n, "marker_dir": str(markers)} for n in (1, 2)], seeds=[0, 1], progress=False)
    frame = run_grid(dies_once, cache=Cache(tmp_path / "cache"), engine="ray", **grid)
    assert sorted(frame.value) == [10, 11, 20, 21] and len(list(markers.iterdir())) == 4  # every cell died once, then ran


def test_a_rerun_after_a_failed_cell_computes_only_the_missing_cell(tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    cache = Cache(tmp_path / "cache")
    settings = [{"n": n, "marker_dir": str(markers)} for n in (1, 2, 3)]
    with pytest.raises(CellFailed, match=r"n=2.*broken"):
        run_grid(counted, experiment="resume", settings=[{**s, "broken": 2} for s in settings], seeds=[0], cache=cache, engine="ray", progress=False)
    first = len(list(markers.iterdir()))
    assert first == 2 + 1 + RayEngine().retries  # two good cells, and the broken one on every attempt
    frame = run_grid(counted, experiment="resume", settings=[{**s, "broken": 2} for s in settings[:1] + settings[2:]], seeds=[0], cache=cache,
                     engine="ray", progress=False)
    assert len(list(markers.iterdir())) == first and len(frame) == 2  # the finished cells come from the cache
