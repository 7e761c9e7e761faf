"""Cautious pseudo-labelling on graphs (CPL; Wang et al., "Deep Insights into Noisy Pseudo Labeling on Graph Data",
NeurIPS 2023) and the pseudo-labelling schemes it is compared with, as the official code runs them (``main_node.py``,
``main_random.py``; the paper's formal statement was not retrieved).

A base GNN f is trained on the labelled nodes L, with a snapshot f_s taken early in that training. Each round t:

    Z = (1/V) sum_v f(view_v(X, A))        V = 4: identity, feature dropout, edge dropping, feature noise (rate p)
    conf_i, y_i = max / argmax softmax(Z_i)
    S_t = top-k of conf over the candidates not yet pseudo-labelled, conf > 0.01 (optionally only the nodes on which
          all V views predict the class of Z: the paper's "multi-view consistency" read as a filter)
    P <- P + S_t with labels y;   f_t = fit(f_s, L + P)   (re-initialised from the snapshot every round)

Pseudo-labels always come from the base model f (the official code never reloads it): only the views' randomness
changes between rounds. Every scheme is a *pseudo-labeller*, ``select(state) -> Selection`` (the whole
pseudo-labelled set of the next round), registered by name: ``get_pseudo_labeller("cpl", k=100, p=0.1)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Iterator, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data

from kdlib.models.gnn import normalized_adjacency, sparse_csr
from kdlib.registry import Registry


class Selection(NamedTuple):
    """A round's pseudo-labelled nodes and their labels; ``agreement``: the fraction of nodes on which every view
    predicts the same class (multi-view labellers only)."""

    nodes: torch.Tensor
    labels: torch.Tensor
    agreement: float | None = None


def with_fields(graph: Data, **fields) -> Data:
    """A shallow copy of ``graph`` with some fields replaced (the original is never modified)."""
    return Data(**{**{key: graph[key] for key in graph.keys()}, **fields})


def drop_features(graph: Data, p: float, generator: torch.Generator) -> Data:
    """Feature dropout: every stored feature is zeroed with probability p, the others scaled by 1 / (1 - p)."""
    sparse = graph.x.layout != torch.strided
    x = graph.x.to_sparse_coo().coalesce() if sparse else graph.x
    values = x.values() if sparse else x
    kept = values * torch.bernoulli(torch.full_like(values, 1 - p), generator=generator) / (1 - p)
    return with_fields(graph, x=sparse_csr(torch.sparse_coo_tensor(x.indices(), kept, x.shape, check_invariants=False)) if sparse else kept)


def drop_edges(graph: Data, p: float, generator: torch.Generator) -> Data:
    """Edge dropping: a random ``int(p * E)`` of the E directed edges are removed and the adjacency re-normalised."""
    count = graph.edge_index.shape[1]
    edges = graph.edge_index[:, torch.randperm(count, generator=generator)[int(p * count):].sort().values]
    return with_fields(graph, edge_index=edges, adj_t=normalized_adjacency(edges, graph.num_nodes))


def noise_features(graph: Data, p: float, generator: torch.Generator) -> Data:
    """Feature noise: X + U(0, 1) * std(X) * p / 2 on every entry (std over all entries; the result is dense)."""
    x = graph.x.to_dense()
    return with_fields(graph, x=x + torch.rand(x.shape, generator=generator) * x.std() * p / 2)


VIEWS: dict[str, Callable[[Data, float, torch.Generator], Data]] = {
    "feature dropout": drop_features, "edge dropping": drop_edges, "feature noise": noise_features}


@torch.no_grad()
def view_logits(model: nn.Module, graph: Data, p: float, generator: torch.Generator, multiview: bool = True) -> torch.Tensor:
    """(V, N, C): the model's logits in eval mode on the graph and, with ``multiview``, on its three views."""
    model.eval()
    return torch.stack([model(view) for view in [graph] + ([make(graph, p, generator) for make in VIEWS.values()] if multiview else [])])


def top_k_confident(logits: torch.Tensor, candidates: torch.Tensor, k: int, agree: bool = False, threshold: float = 0.01) -> Selection:
    """The cautious selection: the (at most) k candidates of highest confidence of the mean logits, above
    ``threshold``; with ``agree`` only those on which every view predicts the mean's class. ``logits``: (V, N, C)."""
    if logits.ndim != 3 or candidates.shape != logits.shape[1:2] or candidates.dtype != torch.bool:
        raise ValueError(f"need (V, N, C) logits and an (N,) bool candidate mask, got {tuple(logits.shape)} and {tuple(candidates.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    confidence, labels = F.softmax(logits.mean(0), dim=1).max(1)
    agreeing = (logits.argmax(2) == labels).all(0)
    eligible = candidates & (confidence > threshold) & (agreeing if agree else True)
    nodes = torch.where(eligible, confidence, -1.0).topk(min(k, int(eligible.sum()))).indices
    return Selection(nodes, labels[nodes], float(agreeing.double().mean()) if len(logits) > 1 else None)


def above_threshold(logits: torch.Tensor, candidates: torch.Tensor, threshold: float) -> Selection:
    """Naive self-training's selection: every candidate whose softmax confidence exceeds ``threshold``."""
    confidence, labels = F.softmax(logits, dim=1).max(1)
    nodes = torch.nonzero(candidates & (confidence > threshold))[:, 0]
    return Selection(nodes, labels[nodes])


def inject_noise(labels: torch.Tensor, wrong: torch.Tensor, rate: float, generator: torch.Generator) -> torch.Tensor:
    """A copy of ``labels`` with exactly ``int(rate * n)`` random positions set to ``wrong`` (a wrong class each)."""
    if not 0 <= rate <= 1 or labels.shape != wrong.shape:
        raise ValueError(f"rate must lie in [0, 1] and the labels align, got rate={rate}, shapes {tuple(labels.shape)} and {tuple(wrong.shape)}")
    out = labels.clone()
    flip = torch.randperm(len(labels), generator=generator)[: int(rate * len(labels))]
    out[flip] = wrong[flip]
    return out


@dataclass(frozen=True)
class RoundState:
    """What a pseudo-labeller sees before round ``round`` (1-based): the graph, the base and the latest model, the
    candidate mask (N,), the pseudo-labelled set so far; ``true_labels`` are read by the true-label controls only."""

    graph: Data
    base: nn.Module
    model: nn.Module
    candidates: torch.Tensor
    true_labels: torch.Tensor
    selection: Selection
    round: int
    seed: int

    def generator(self, per_round: bool = True) -> torch.Generator:
        """A generator seeded by the replicate (and the round)."""
        return torch.Generator().manual_seed(self.seed * 1009 + (self.round if per_round else 0))


def pseudo_label_rounds(select: Callable[[RoundState], Selection], train: Callable[[torch.Tensor, torch.Tensor], nn.Module],
                        start: RoundState, rounds: int) -> Iterator[RoundState]:
    """The rounds loop: each round selects the pseudo-labelled set, then ``train(nodes, labels)`` re-initialises the
    model from the early snapshot and fits it on L + P; yields every round's state with its model."""
    state = start
    for t in range(1, rounds + 1):
        selection = select(replace(state, round=t))
        state = replace(state, selection=selection, round=t, model=train(selection.nodes, selection.labels))
        yield state


PSEUDO_LABELLERS: Registry[Callable[..., Callable[[RoundState], Selection]]] = Registry("pseudo-labeller")
register_pseudo_labeller = PSEUDO_LABELLERS.register


def get_pseudo_labeller(name: str, **params) -> Callable[[RoundState], Selection]:
    """Build the pseudo-labeller ``name``; unknown names raise a ``ValueError`` listing the known ones."""
    return PSEUDO_LABELLERS.get(name)(**params)


def _extend(state: RoundState, new: Selection) -> Selection:
    return Selection(torch.cat([state.selection.nodes, new.nodes]), torch.cat([state.selection.labels, new.labels]), new.agreement)


@register_pseudo_labeller("cpl")
def cautious(k: int, p: float, multiview: bool = True, agree: bool = False) -> Callable[[RoundState], Selection]:
    """CPL: k more nodes per round, the base model's most confident (mean over views; single view: one eval pass)."""
    def select(state: RoundState) -> Selection:
        fresh = state.candidates.clone()
        fresh[state.selection.nodes] = False
        return _extend(state, top_k_confident(view_logits(state.base, state.graph, p, state.generator(), multiview), fresh, k, agree))
    return select


@register_pseudo_labeller("self-training")
def self_training(threshold: float = 0.65) -> Callable[[RoundState], Selection]:
    """Naive self-training: every candidate above ``threshold`` under the latest model, regenerated each round."""
    return lambda state: above_threshold(view_logits(state.model, state.graph, 0.0, state.generator(), multiview=False)[0], state.candidates, threshold)


@register_pseudo_labeller("random nodes")
def random_nodes(k: int, labels: Literal["predicted", "true"] = "true", wrong_rate: float = 0.0) -> Callable[[RoundState], Selection]:
    """k more random candidates per round, in one order per replicate (shared by every variant), labelled with the
    base model's prediction (random pseudo-labels) or their true labels, of which ``int(wrong_rate * k)`` per round
    get the latest model's least likely class other than the true one (the noise toy of ``main_random.py``)."""
    if labels not in ("predicted", "true") or (labels == "predicted" and wrong_rate):
        raise ValueError(f"labels must be 'predicted' or 'true' (a wrong_rate only with true labels), got {labels!r}, {wrong_rate}")

    def select(state: RoundState) -> Selection:
        pool = torch.nonzero(state.candidates)[:, 0]
        done = len(state.selection.nodes)
        new = pool[torch.randperm(len(pool), generator=state.generator(per_round=False))][done:done + k]
        if labels == "predicted":
            return _extend(state, Selection(new, view_logits(state.base, state.graph, 0.0, state.generator(), multiview=False)[0, new].argmax(1)))
        logits = view_logits(state.model, state.graph, 0.0, state.generator(), multiview=False)[0, new]
        wrong = logits.scatter(1, state.true_labels[new, None], torch.inf).argmin(1)
        return _extend(state, Selection(new, inject_noise(state.true_labels[new], wrong, wrong_rate, state.generator())))
    return select
