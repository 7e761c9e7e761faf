"""Cautious pseudo-labelling on graphs (kdlib.distill.pseudo_label) and notebook 08's protocol (kdlib.experiments.pseudo_label)."""

import math

import pandas as pd
import pytest
import torch
from torch import nn

from kdlib.distill.pseudo_label import (
    RoundState, Selection, above_threshold, drop_edges, drop_features, get_pseudo_labeller, inject_noise, noise_features, pseudo_label_rounds,
    top_k_confident, view_logits,
)
from kdlib.distill import get_objective
from kdlib.experiments import pseudo_label as experiment
from kdlib.models.gnn import GraphNodes, build_gnn, graph_input, normalized_adjacency, sparse_csr
from kdlib.models.stacked import as_stack
from kdlib.train import TrainConfig, TrainSet, UpdateContext, fit
from tests.test_gnn import two_communities


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- selection on hand-made logits ---------------------------------------------------------------------------------
# two views, five nodes, two classes; mean-logit confidences: node 0 .98 (views agree), 1 .95 (views disagree),
# 2 .73 (agree), 3 .88 (agree, but not a candidate), 4 .50 (a tie)
LOGITS = torch.tensor([
    [[4.0, 0.0], [7.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 0.0]],
    [[4.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, 2.0], [0.0, 0.0]],
])
CANDIDATES = torch.tensor([True, True, True, False, True])


def test_top_k_takes_the_most_confident_candidates_of_the_mean_logits():
    nodes, labels, agreement = top_k_confident(LOGITS, CANDIDATES, k=2)
    assert nodes.tolist() == [0, 1] and labels.tolist() == [0, 0]
    assert agreement == pytest.approx(4 / 5)  # node 1's views disagree
    nodes, _, _ = top_k_confident(LOGITS, CANDIDATES, k=10)
    assert nodes.tolist() == [0, 1, 2, 4]  # every candidate above the 0.01 threshold, node 3 never


def test_agreement_filter_drops_nodes_on_which_a_view_disagrees():
    nodes, labels, _ = top_k_confident(LOGITS, CANDIDATES, k=2, agree=True)
    assert nodes.tolist() == [0, 2] and labels.tolist() == [0, 0]


def test_confidence_threshold_and_single_view():
    nodes, _, agreement = top_k_confident(LOGITS[:1], CANDIDATES, k=5, threshold=0.9)
    assert nodes.tolist() == [1, 0] and agreement is None  # one view: no agreement to report
    assert above_threshold(LOGITS[0], CANDIDATES, 0.9).nodes.tolist() == [0, 1]


def test_selection_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(V, N, C\) logits"):
        top_k_confident(LOGITS[0], CANDIDATES, 2)
    with pytest.raises(ValueError, match="bool candidate mask"):
        top_k_confident(LOGITS, CANDIDATES.long(), 2)
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k_confident(LOGITS, CANDIDATES, 0)


# --- noise injection -----------------------------------------------------------------------------------------------
def test_inject_noise_sets_exactly_the_rate_and_nests_across_rates():
    labels, wrong = torch.zeros(100, dtype=torch.long), torch.ones(100, dtype=torch.long)
    flipped = {}
    for rate in (0.0, 0.25, 0.6, 1.0):
        noisy = inject_noise(labels, wrong, rate, generator(3))
        assert int((noisy != labels).sum()) == int(rate * 100)
        flipped[rate] = set(torch.nonzero(noisy != labels)[:, 0].tolist())
    assert flipped[0.25] <= flipped[0.6] <= flipped[1.0]  # the same generator: the wrong sets are nested
    assert int((inject_noise(labels[:7], wrong[:7], 0.3, generator()) != 0).sum()) == 2  # int(0.3 * 7)
    with pytest.raises(ValueError, match=r"rate must lie in \[0, 1\]"):
        inject_noise(labels, wrong, 1.5, generator())


# --- the views -----------------------------------------------------------------------------------------------------
def test_feature_dropout_zeroes_a_p_fraction_and_rescales_the_rest():
    x = torch.rand(200, 50) * (torch.rand(200, 50, generator=generator(1)) < 0.3)
    for features in (x, sparse_csr(x)):
        graph = graph_input(features, torch.tensor([[0, 1], [1, 0]]))
        view = drop_features(graph, 0.2, generator())
        dense, original = view.x.to_dense(), x
        kept = dense != 0
        assert ((dense[kept] / original[kept]) - 1 / 0.8).abs().max() < 1e-5
        assert 1 - kept.sum() / (original != 0).sum() == pytest.approx(0.2, abs=0.02)
        assert view.x.layout == features.layout and graph.x is features  # same layout, original untouched


def test_edge_dropping_removes_a_p_fraction_and_renormalises():
    graph, _ = two_communities()
    view = drop_edges(graph, 0.1, generator())
    count = graph.edge_index.shape[1]
    assert view.edge_index.shape[1] == count - int(0.1 * count)
    original = set(map(tuple, graph.edge_index.T.tolist()))
    assert set(map(tuple, view.edge_index.T.tolist())) <= original
    assert torch.allclose(view.adj_t.to_dense(), normalized_adjacency(view.edge_index, 40).to_dense())
    assert graph.edge_index.shape[1] == count  # the original graph is not modified


def test_feature_noise_adds_uniform_noise_scaled_by_the_feature_std():
    x = sparse_csr(torch.rand(300, 40) * (torch.rand(300, 40, generator=generator(2)) < 0.2))
    graph = graph_input(x, torch.tensor([[0, 1], [1, 0]]))
    noise = noise_features(graph, 0.1, generator()).x - x.to_dense()
    scale = x.to_dense().std() * 0.1 / 2
    assert noise.min() >= 0 and noise.max() <= scale
    assert float(noise.mean()) == pytest.approx(float(scale) / 2, rel=0.05)  # U(0, 1) has mean 1/2


def test_view_logits_stack_the_identity_and_three_views_in_eval_mode():
    graph, _ = two_communities()
    model = build_gnn("gcn", 2, 2, 8, 0.5, 0).train()
    logits = view_logits(model, graph, 0.1, generator(), multiview=True)
    assert logits.shape == (4, 40, 2) and not model.training
    with torch.no_grad():
        assert torch.equal(logits[0], model(graph))
    assert not torch.equal(logits[1], logits[0]) and not torch.equal(logits[2], logits[0]) and not torch.equal(logits[3], logits[0])
    assert view_logits(model, graph, 0.1, generator(), multiview=False).shape == (1, 40, 2)


# --- the rounds loop -----------------------------------------------------------------------------------------------
class Fixed(nn.Module):
    """A 'model' that always returns the same logits (to check which model a pseudo-labeller reads)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, graph):
        return self.logits


def _state(graph, y, base, seed=0) -> RoundState:
    candidates = torch.ones(len(y), dtype=torch.bool)
    candidates[:6] = False  # the labelled nodes
    empty = Selection(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long))
    return RoundState(graph, base, base, candidates, y, empty, 0, seed)


def test_cpl_rounds_on_a_tiny_graph_grow_the_set_from_the_base_model():
    graph, y = two_communities()
    labelled = torch.arange(6)
    base = build_gnn("gcn", 2, 2, 16, 0.3, 0)
    config = TrainConfig(epochs=30, batch_size=1 << 30, lr=0.05, patience=None)
    fit(base, get_objective("ce"), TrainSet(GraphNodes(graph, labelled), y[labelled]), config=config, seed=0, progress=False)
    snapshot = {k: v.clone() for k, v in base.state_dict().items()}
    calls = []

    def train(nodes, labels):
        calls.append(len(nodes))
        model = build_gnn("gcn", 2, 2, 16, 0.3, 0)
        model.load_state_dict(snapshot)
        fit(model, get_objective("ce"), TrainSet(GraphNodes(graph, torch.cat([labelled, nodes])), torch.cat([y[labelled], labels])), config=config, seed=0, progress=False)
        return model

    states = list(pseudo_label_rounds(get_pseudo_labeller("cpl", k=5, p=0.1), train, _state(graph, y, base), rounds=3))
    assert [s.round for s in states] == [1, 2, 3] and calls == [5, 10, 15]
    final = states[-1].selection
    assert len(set(final.nodes.tolist())) == 15 and not (final.nodes < 6).any()  # unique, never a labelled node
    for state in states:  # the labels come from the base model, whatever model the round trained
        assert state.model is not base
        mean = view_logits(base, graph, 0.1, generator(0 * 1009 + state.round)).mean(0)
        assert torch.equal(state.selection.labels[-5:], mean.argmax(1)[state.selection.nodes[-5:]])
        assert torch.equal(state.selection.nodes[:len(states[0].selection.nodes)], states[0].selection.nodes)


def test_cpl_labels_come_from_the_base_model_not_the_latest():
    graph, y = two_communities()
    base, later = torch.zeros(40, 2), torch.zeros(40, 2)
    base[10:20, 1] = torch.arange(10.0, 0.0, -1.0)  # base: nodes 10, 11, ... in decreasing confidence, class 1
    later[30:, 0] = 9.0  # every retrained model: confident on nodes 30-39, class 0
    states = list(pseudo_label_rounds(get_pseudo_labeller("cpl", k=3, p=0.1, multiview=False), lambda n, l: Fixed(later),
                                      _state(graph, y, Fixed(base)), rounds=3))
    assert [s.selection.nodes.tolist() for s in states] == [[10, 11, 12], [10, 11, 12, 13, 14, 15], list(range(10, 19))]
    assert (states[-1].selection.labels == 1).all()


def test_self_training_regenerates_its_set_from_the_latest_model():
    graph, y = two_communities()
    first = torch.zeros(40, 2)
    first[10:20, 0] = 5.0  # base: confident on nodes 10-19
    second = torch.zeros(40, 2)
    second[30:, 1] = 5.0  # the next model: confident on nodes 30-39
    states = list(pseudo_label_rounds(get_pseudo_labeller("self-training", threshold=0.65), lambda n, l: Fixed(second),
                                      _state(graph, y, Fixed(first)), rounds=2))
    assert states[0].selection.nodes.tolist() == list(range(10, 20)) and (states[0].selection.labels == 0).all()
    assert states[1].selection.nodes.tolist() == list(range(30, 40)) and (states[1].selection.labels == 1).all()


def test_random_nodes_share_one_order_and_label_it_as_asked():
    graph, y = two_communities()
    base_logits = torch.randn(40, 2, generator=generator(5))
    run = lambda **params: list(pseudo_label_rounds(get_pseudo_labeller("random nodes", k=10, **params), lambda n, l: Fixed(base_logits),  # noqa: E731
                                                    _state(graph, y, Fixed(base_logits), seed=7), rounds=3))[-1].selection
    true, predicted, noisy = run(labels="true"), run(labels="predicted"), run(labels="true", wrong_rate=0.3)
    assert torch.equal(true.nodes, predicted.nodes) and torch.equal(true.nodes, noisy.nodes) and not (true.nodes < 6).any()
    assert torch.equal(true.labels, y[true.nodes])
    assert torch.equal(predicted.labels, base_logits.argmax(1)[predicted.nodes])
    assert int((noisy.labels != y[noisy.nodes]).sum()) == 3 * 3  # int(0.3 * 10) per round, always a wrong class
    with pytest.raises(ValueError, match="labels must be 'predicted' or 'true'"):
        get_pseudo_labeller("random nodes", k=10, labels="predicted", wrong_rate=0.2)
    with pytest.raises(ValueError, match="unknown pseudo-labeller"):
        get_pseudo_labeller("drgst")


# --- the protocol --------------------------------------------------------------------------------------------------
def test_adam_l2_update_is_torch_adam_with_weight_decay():
    torch.manual_seed(0)
    ours, reference = nn.Linear(3, 2), nn.Linear(3, 2)
    reference.load_state_dict(ours.state_dict())
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    optimizer = torch.optim.AdamW(ours.parameters(), lr=0.01, weight_decay=0.0)
    expected = torch.optim.Adam(reference.parameters(), lr=0.01, weight_decay=0.1)
    update = experiment.adam_l2_update(0.1)
    for _ in range(3):
        losses = nn.functional.cross_entropy(ours(x), y)[None]
        update(UpdateContext(as_stack(ours), x, None, losses, optimizer, []))
        expected.zero_grad()
        nn.functional.cross_entropy(reference(x), y).backward()
        expected.step()
    assert all(torch.allclose(p, q, atol=1e-6) for p, q in zip(ours.parameters(), reference.parameters()))


def test_protocols_pick_rounds_by_validation_or_test_accuracy():
    rows = [(0, 0.80, 0.70), (1, 0.81, 0.75), (2, 0.79, 0.78), (3, 0.83, 0.75)]  # round, test, val
    frame = pd.DataFrame([{"dataset": "cora", "arch": "gcn", "method": "m", "seed": 0, "round": r, "test_accuracy": t, "val_accuracy": v,
                           "pl_accuracy": math.nan if r == 0 else 0.9} for r, t, v in rows])
    picked = experiment.selected_rounds(frame).set_index("protocol")["round"]
    assert picked["validation-selected round"] == 2  # the first of the tied best validation rounds is 2 (0.78)
    assert picked["best round by test (official)"] == 3 and picked["final round"] == 3
    records = experiment.to_records(frame)
    base = [r for r in records if r.method == experiment.BASE and r.metric == "test_accuracy"]
    assert {r.setting for r in base} == {"round 0", "validation-selected round", "best round by test (official)", "final round"}
    assert all(r.value == 0.80 for r in base)


def test_true_label_methods_are_scored_on_the_test_nodes_they_did_not_add():
    assert experiment.uses_true_labels(experiment.RANDOM_TRUE) and experiment.uses_true_labels(experiment.noisy(0.6))
    assert not experiment.uses_true_labels(experiment.CPL) and not experiment.uses_true_labels(experiment.RANDOM_PL)
    with pytest.raises(ValueError, match="unknown method"):
        experiment.labeller("cora", "DR-GST")
    with pytest.raises(ValueError, match="snapshot must be taken before training can stop"):
        experiment.Recipe(patience=10, snapshot_epoch=20)


def test_settings_cut_rounds_and_methods_not_replicates():
    full = experiment.settings("full", replicates=5)
    assert full.replicates == 5 and full.datasets == ("cora", "citeseer")
    assert set(experiment.CLAIM_METHODS) <= set(dict(full.methods)["citeseer"])
    cells = experiment.cells(full, range(5))
    assert len(cells) == 5 * (len(experiment.METHODS) + len(experiment.CLAIM_METHODS))
    pilot = experiment.pilot_settings(full)
    assert pilot.datasets == ("cora",) and pilot.rounds == 2
