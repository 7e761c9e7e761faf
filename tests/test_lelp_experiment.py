import numpy as np
import pandas as pd
import pytest
import torch

from kdlib.distill import get_objective
from kdlib.experiments import lelp
from kdlib.results import Record
from kdlib.tasks import SubclassTask
from kdlib.train import TrainConfig


def _task(n=120, dim=6, fine=True):
    g = torch.Generator().manual_seed(0)
    fine_labels = torch.arange(n) % 4  # 4 fine classes -> 2 coarse classes with 2 subclasses each
    labels = fine_labels % 2
    centres = 3 * torch.randn(4, dim, generator=g)
    embeddings = centres[fine_labels] + 0.3 * torch.randn(n, dim, generator=g)
    head = torch.randn(2, dim, generator=g)
    x = embeddings + 0.5 * torch.randn(n, dim, generator=g)
    return SubclassTask(
        name="toy", classes=("a", "b"), teacher_name="toy", teacher_test_accuracy=1.0,
        x_transfer=x, y_transfer=labels, logits_transfer=embeddings @ head.T, embeddings_transfer=embeddings,
        x_val=x[:40], y_val=labels[:40], x_test=x[40:], y_test=labels[40:],
        embeddings_fit=embeddings, y_fit=labels, head_weight=head,
        fine_transfer=fine_labels // 2 if fine else None, fine_fit=fine_labels // 2 if fine else None,
    )


@pytest.mark.parametrize("method", lelp.METHODS)
def test_every_method_builds_targets_that_sum_to_its_class_distribution(method):
    task = _task()
    variant = lelp.Variant(method, subclasses=2, beta=0.5 if method in ("LELP", "LELP w/o null space", "random projections") else None, temperature=2.0)
    targets = get_objective(**lelp.objective_spec(task, variant, seed=0)).targets
    class_targets = targets.sum(2) if targets.ndim == 3 else targets
    assert torch.allclose(class_targets.sum(1), torch.ones(len(task.y_transfer)), atol=1e-5)
    if method == "labels only":
        assert torch.equal(class_targets.argmax(1), task.y_transfer)
    elif method != "labels only":
        assert torch.allclose(class_targets, torch.softmax(task.logits_transfer / 2.0, 1), atol=1e-5)


def test_oracle_targets_follow_the_true_fine_label_on_the_own_class():
    task = _task()
    targets = get_objective(**lelp.objective_spec(task, lelp.Variant("oracle subclasses", 2), seed=0)).targets
    own = targets[torch.arange(len(task.y_transfer)), task.y_transfer]  # (N, S)
    assert torch.equal(own.argmax(1), task.fine_transfer)


def test_oracle_needs_fine_labels_and_unknown_methods_raise():
    with pytest.raises(ValueError, match="no finer labels"):
        lelp.objective_spec(_task(fine=False), lelp.Variant("oracle subclasses", 2), seed=0)
    with pytest.raises(ValueError, match="unknown method"):
        lelp.objective_spec(_task(), lelp.Variant("subclass distillation", 2), seed=0)


def test_select_picks_the_best_mean_validation_setting_per_method():
    runs = pd.DataFrame(
        {
            "method": ["m"] * 4 + ["k"] * 2,
            "setting": ["a", "a", "b", "b", "x", "x"],
            "seed": [0, 1, 0, 1, 0, 1],
            "val_accuracy": [0.9, 0.5, 0.7, 0.8, 0.1, 0.2],  # a: mean 0.70, b: mean 0.75
            "test_accuracy": [0.0, 0.0, 1.0, 1.0, 0.5, 0.5],
        }
    )
    chosen = lelp.select(runs)
    assert set(chosen[chosen.method == "m"].setting) == {"b"} and len(chosen) == 4


def test_run_experiment_end_to_end_on_a_toy_task(tmp_path):
    from kdlib.cache import Cache

    task = _task()
    grid = lelp.Grid(temperatures=(1.0,), subclasses=(2, 3), betas=(0.5, 2.0))
    recipe = lelp.StudentRecipe(hidden=8, train=TrainConfig(epochs=3, batch_size=32, lr=1e-2, patience=2))
    runs = lelp.run_experiment(task, grid, seeds=[0, 1], recipe=recipe, cache=Cache(tmp_path))
    assert set(runs.method) == set(lelp.METHODS)
    # stage 3 runs the controls at LELP's chosen S
    chosen_s = lelp.select(runs[runs.stage == "2 S sweep"]).query("method == 'LELP'").subclasses.iloc[0]
    assert set(runs[runs.stage == "3 controls"].subclasses) == {chosen_s}
    records = lelp.selected_records(runs)
    assert {r.setting for r in records} == {lelp.SELECTED}
    assert len(lelp.accuracy_by_subclasses(runs).query("method == 'LELP'")) == 2 * 2  # one row per S and seed


def test_gain_shrinks_matches_a_hand_computation():
    def recs(task, diffs):
        out = []
        for seed, d in enumerate(diffs):
            out += [Record(task, "LELP", lelp.SELECTED, seed, "test_accuracy", 0.5 + d), Record(task, "vanilla KD", lelp.SELECTED, seed, "test_accuracy", 0.5)]
        return out

    records = recs("few", [0.03, 0.02, 0.04]) + recs("many", [0.0, 0.01, -0.01])
    result = lelp.gain_shrinks(records, ["few"], "many")
    assert result["shrink"] == pytest.approx(0.03)
    assert result["ci_low"] > 0
    assert np.isclose(result["few_class_gain"], 0.03) and np.isclose(result["many_class_gain"], 0.0)


def test_grid_rejects_bad_values():
    with pytest.raises(ValueError, match="S >= 2"):
        lelp.Grid(temperatures=(1.0,), subclasses=(1, 2), betas=(1.0,))
    with pytest.raises(ValueError, match="non-empty"):
        lelp.Grid(temperatures=(), subclasses=(2,), betas=(1.0,))


def test_difference_table_and_validation_landscape():
    records = []
    for seed, (a, b) in enumerate([(0.60, 0.50), (0.62, 0.50), (0.61, 0.50)]):
        records += [Record("t", "LELP", lelp.SELECTED, seed, "test_accuracy", a), Record("t", "vanilla KD", lelp.SELECTED, seed, "test_accuracy", b)]
    from kdlib.results import difference_table

    table = difference_table(records, [("LELP", "vanilla KD"), ("LELP", "k-means")], ["t"], pooled=["t"])
    assert table.loc["LELP − vanilla KD", "t"].startswith("+11.00 [")
    assert table.loc["LELP − k-means", "t"] == ""  # k-means never ran: the cell stays empty
    runs = pd.DataFrame(
        {"task": "t", "method": "LELP", "setting": ["a", "a", "b", "b"], "val_accuracy": [0.5, 0.7, 0.9, 0.9]}
    )
    landscape = lelp.validation_landscape(runs)
    assert landscape.loc["t", "chosen"] == "b"
    assert landscape.loc["t", "val spread over grid (pp)"] == pytest.approx(30.0)
    assert landscape.loc["t", "within one std of the best"] == 1
