import math

import pandas as pd
import pytest
import torch

from kdlib.claims import lelp as claims
from kdlib.distill import get_objective
from kdlib.experiments import lelp
from kdlib.models.stacked import StackedMLP
from kdlib.results import Record, grade, to_frame
from kdlib.tasks import SubclassTask


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
        embeddings_fit=embeddings, y_fit=labels, head_weight=head, student={"kind": "MLP", "hidden": 8},
        make_stack=lambda subclasses, seed: StackedMLP(dim, 8, 2, subclasses, seed),
        fine_transfer=fine_labels // 2 if fine else None, fine_fit=fine_labels // 2 if fine else None,
    )


def _variant(method, s=2, tau=2.0):
    return lelp.Variant(method, 1 if method in ("labels only", "vanilla KD") else s, 0.5 if method in lelp.BETA_METHODS else None,
                        1.0 if method == "labels only" else tau)


@pytest.mark.parametrize("method", lelp.METHODS)
def test_every_method_builds_targets_that_sum_to_its_class_distribution(method):
    task = _task()
    targets = get_objective(**lelp.objective_spec(task, _variant(method), seed=0)).targets
    class_targets = targets.sum(2) if targets.ndim == 3 else targets
    assert torch.allclose(class_targets.sum(1), torch.ones(len(task.y_transfer)), atol=1e-5)
    if method == "labels only":
        assert torch.equal(class_targets.argmax(1), task.y_transfer)
    else:
        assert torch.allclose(class_targets, torch.softmax(task.logits_transfer / 2.0, 1), atol=1e-5)


def test_the_two_oracles_agree_on_the_own_class_and_differ_on_the_other():
    task = _task()
    rows = torch.arange(len(task.y_transfer))
    uniform = get_objective(**lelp.objective_spec(task, _variant(lelp.ORACLE_UNIFORM), seed=0)).targets
    centroid = get_objective(**lelp.objective_spec(task, _variant(lelp.ORACLE_CENTROID), seed=0)).targets
    assert torch.equal(uniform[rows, task.y_transfer].argmax(1), task.fine_transfer)
    assert torch.allclose(uniform[rows, task.y_transfer], centroid[rows, task.y_transfer])
    other = 1 - task.y_transfer
    assert torch.allclose(uniform[rows, other, 0], uniform[rows, other, 1])  # spread evenly
    assert ((centroid[rows, other] > 0).sum(1) == 1).all()  # all on one slot


def test_variants_validate_their_hyper_parameters():
    with pytest.raises(ValueError, match="unknown method"):
        lelp.Variant("subclass distillation", 2)
    with pytest.raises(ValueError, match="needs beta"):
        lelp.Variant("LELP", 2)
    with pytest.raises(ValueError, match="takes no beta"):
        lelp.Variant("k-means", 2, 0.5)
    with pytest.raises(ValueError, match="S >= 2"):
        lelp.Variant("head-matched KD", 1)
    with pytest.raises(ValueError, match="no finer labels"):
        lelp.objective_spec(_task(fine=False), _variant(lelp.ORACLE_UNIFORM), seed=0)
    assert lelp.Variant("LELP", 5, 0.0625, 2.0).label == "S=5, beta=0.0625, tau=2"


def test_select_picks_the_best_mean_validation_setting_per_task_and_method():
    runs = pd.DataFrame({
        "task": "t", "method": ["m"] * 4 + ["k"] * 2, "setting": ["a", "a", "b", "b", "x", "x"], "seed": [0, 1, 0, 1, 0, 1],
        "val_accuracy": [0.9, 0.5, 0.7, 0.8, 0.1, 0.2],  # a: mean 0.70, b: mean 0.75
    })
    chosen = lelp.select(runs)
    assert set(chosen[chosen.method == "m"].setting) == {"b"} and len(chosen) == 4


def _plan():
    return lelp.TaskPlan({"kind": "toy", "dataset": "toy"}, dict(epochs=2, batch_size=32, lr=1e-2, patience=None), lelp.METHODS)


def test_stages_fix_tau_then_lelp_fixes_its_ablations(monkeypatch):
    monkeypatch.setattr(lelp, "build_task", lambda spec: _task())
    grid = lelp.Grid(temperatures=(1.0, 4.0), subclasses=(2, 3), betas=(0.25, 1.0))
    first = lelp.stage_variants(_plan(), grid, "tau")
    assert [v["method"] for v in first] == ["labels only", "vanilla KD", "vanilla KD"]
    earlier = pd.DataFrame([{"task": "toy", **v, "setting": lelp.Variant(**v).label, "val_accuracy": acc} for v, acc in zip(first, [0.5, 0.6, 0.7])])
    sweep = [lelp.Variant(**v) for v in lelp.stage_variants(_plan(), grid, "sweep", earlier)]
    assert {v.temperature for v in sweep} == {4.0} and {v.method for v in sweep} == {"LELP"} and len(sweep) == 4
    rows = pd.DataFrame([{"task": "toy", **asdict_(v), "setting": v.label, "val_accuracy": 0.9 if (v.subclasses, v.beta) == (3, 0.25) else 0.5}
                         for v in sweep])
    chosen = {v["method"]: lelp.Variant(**v) for v in lelp.chosen_variants(pd.concat([earlier, rows]), lelp.METHODS, num_fine=2)}
    assert chosen["LELP"] == lelp.Variant("LELP", 3, 0.25, 4.0)
    assert (chosen["random projections"].subclasses, chosen["random projections"].beta) == (3, 0.25)
    assert chosen["head-matched KD"].subclasses == chosen["k-means"].subclasses == 3 and chosen[lelp.ORACLE_UNIFORM].subclasses == 2
    assert chosen["labels only"].temperature == 1.0 and {v.temperature for m, v in chosen.items() if m != "labels only"} == {4.0}
    with pytest.raises(ValueError, match="stage must be"):
        lelp.stage_variants(_plan(), grid, "controls", earlier)


def asdict_(variant):
    from dataclasses import asdict

    return asdict(variant)


def test_train_cell_trains_every_variant_in_one_stack(monkeypatch):
    monkeypatch.setattr(lelp, "build_task", lambda spec: _task())
    variants = [asdict_(_variant(m)) for m in ("vanilla KD", "head-matched KD", "LELP", "uniform split")]
    rows = lelp.train_cell({"kind": "toy"}, variants, 0, dict(epochs=2, batch_size=32, lr=1e-2, patience=None))
    assert [r["method"] for r in rows] == ["vanilla KD", "head-matched KD", "LELP", "uniform split"]
    assert math.isnan(rows[0]["split_entropy"]) and math.isnan(rows[1]["split_entropy"])
    assert rows[3]["split_entropy"] == pytest.approx(1.0) and 0 < rows[2]["split_entropy"] < 1
    assert all(0 <= r["test_accuracy"] <= 1 for r in rows)


def _records(diffs: dict) -> pd.DataFrame:
    """Records of every method on every claims task: method accuracy = 0.7 + diffs.get((task, method), 0) per seed."""
    out = []
    for task in (*claims.FEW_CLASS, claims.MANY_CLASS):
        for seed in range(4):
            for method in lelp.METHODS:
                value = 0.7 + diffs.get((task, method), 0.0) + 0.001 * (seed % 2) * (method == "LELP")
                for metric in ("test_accuracy", "val_accuracy"):
                    out.append(Record(task, method, lelp.SELECTED, seed, metric, value))
    return to_frame(out)


def test_claims_grade_on_synthetic_records():
    gain = {(t, "LELP"): 0.02 for t in claims.FEW_CLASS} | {(t, lelp.ORACLE_UNIFORM): 0.03 for t in claims.BINARISED}
    gain |= {(t, lelp.ORACLE_CENTROID): 0.03 for t in claims.BINARISED}
    evidence, gates = claims.evidence(_records(gain))
    verdicts = {v.declaration.id: v for v in grade(claims.DECLARATIONS, evidence, gates)}
    assert verdicts["lelp-beats-kd"].verdict == "reproduced" and verdicts["lelp-beats-kd"].estimate == pytest.approx(2.05, abs=0.01)
    assert verdicts["gain-fades-with-classes"].verdict == "reproduced"  # 10-class LELP = KD
    assert verdicts["oracle-geq-lelp"].verdict == "reproduced"
    flat, flat_gates = claims.evidence(_records({}))
    verdicts = {v.declaration.id: v for v in grade(claims.DECLARATIONS, flat, flat_gates)}
    assert verdicts["gain-fades-with-classes"].verdict == "not testable here"  # LELP does not beat KD on the few-class tasks
    assert verdicts["lelp-beats-kd"].gated_out == claims.BINARISED  # no oracle headroom: only the text task is left


def test_declared_plan_matches_the_pilot_rule():
    plan = claims.PLAN
    assert plan.replicates == claims.R <= claims.CAP and plan.n_pilot == len(lelp.PILOT_SEEDS)
    assert all(c.replicates == plan.replicates for c in claims.DECLARATIONS.claims)


def test_main_replicates_retrain_their_teacher_only_where_the_plan_says_so():
    full = lelp.settings("full", replicates=3)
    main, whole = full.tasks[0], full.tasks[1]
    assert main.retrain_teacher and whole.retrain_teacher and not full.tasks[2].retrain_teacher
    assert "teacher_seed" not in main.replicate_spec(0, main=True)  # replicate 0 trains on the shared teacher
    assert main.replicate_spec(2, main=True)["teacher_seed"] == 2 and "teacher_seed" not in main.replicate_spec(1001, main=False)
    assert "teacher_seed" not in full.tasks[2].replicate_spec(2, main=True)
    assert whole.key == f"cifar10 mod2 {lelp.WHOLE}" and whole.settings_from == main.key and whole.spec["n_transfer"] == 45_000
    cells = lelp.cells(main, [], [0, 1], main=True)
    assert [c["spec"].get("teacher_seed") for c in cells] == [None, 1]


def test_a_tag_names_the_task(monkeypatch):
    monkeypatch.setattr(lelp, "subclass_vision_task", lambda *a, **k: _task())
    lelp._build.cache_clear()
    spec = {"kind": "vision", "dataset": "d", "labels": "mod2", "teachers": "quick", "n_transfer": 1, "n_fit": 1, "n_val": 1, "student": {}}
    assert lelp.build_task(spec).name == "toy" and lelp.build_task({**spec, "tag": "whole training set"}).name == "toy, whole training set"
    lelp._build.cache_clear()
