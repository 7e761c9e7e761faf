"""Graph neural networks from PyTorch Geometric, and a graph's nodes as inputs of the one training engine.

A model sees the whole graph, a :class:`torch_geometric.data.Data` with node features ``x`` (sparse CSR or dense),
the directed edge list ``edge_index`` (source, target) and ``adj_t``, the GCN-normalised adjacency with self-loops
(Kipf & Welling 2017, eq. 2: D^-1/2 (A + I) D^-1/2, transposed: row i aggregates node i's in-neighbours), computed
once per graph (:func:`graph_input`) rather than in every forward pass. ``forward(graph) -> (N, C)`` logits of every
node; :class:`GraphNodes` scores them on node indices, so ``kdlib.train.fit`` trains full-batch on a node set.

* :class:`GCN`: two ``GCNConv`` layers, ReLU and dropout between them (the official CPL code's GCN).
* :class:`APPNPNet`: a two-layer MLP and personalised-PageRank propagation (``APPNP``, alpha 0.1, K 10; Gasteiger
  et al. 2019), as in the official CPL code.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import Data
from torch_geometric.nn import APPNP, GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from kdlib.data.dataset import GraphDataset

ARCHITECTURES = ("gcn", "appnp")


def sparse_csr(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in sparse CSR layout (without torch's one-time "beta" warning)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return tensor if tensor.layout == torch.sparse_csr else tensor.to_sparse_csr()


def normalized_adjacency(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """D^-1/2 (A + I) D^-1/2 as a sparse CSR ``adj_t`` (row = target node), with D the in-degrees plus one."""
    if edge_index.ndim != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be (2, E), got shape {tuple(edge_index.shape)}")
    adj_t = torch.sparse_coo_tensor(edge_index.flip(0), torch.ones(edge_index.shape[1]), (num_nodes, num_nodes), check_invariants=False).coalesce()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return sparse_csr(gcn_norm(sparse_csr(adj_t), add_self_loops=True)[0])


def graph_input(x: torch.Tensor, edge_index: torch.Tensor) -> Data:
    """A model's input: features ``x`` (N, F), edges (2, E) and their normalised adjacency ``adj_t``."""
    return Data(x=x, edge_index=edge_index, adj_t=normalized_adjacency(edge_index, x.shape[0]), num_nodes=x.shape[0])


def planetoid_graph(dataset: GraphDataset) -> Data:
    """A Planetoid graph as a model input, features row-normalised to sum 1 (as the GCN reference loader and DGL's
    citation datasets, which the official CPL code reads, preprocess them) and stored sparse."""
    x = torch.from_numpy(np.array(dataset.x, dtype=np.float32))
    x = x / x.sum(1, keepdim=True).clamp_min(1e-12)
    return graph_input(sparse_csr(x), torch.from_numpy(np.array(dataset.edge_index, dtype=np.int64)))


@dataclass(frozen=True)
class GraphNodes:
    """Nodes of one graph as training or evaluation inputs: the model sees the whole graph (``take``) and is scored on
    the nodes ``nodes[idx]`` (``pick``); with a batch size >= ``len`` every step is full-batch."""

    graph: Data
    nodes: torch.Tensor

    def __post_init__(self) -> None:
        if self.nodes.ndim != 1 or (len(self.nodes) and not 0 <= int(self.nodes.min()) <= int(self.nodes.max()) < self.graph.num_nodes):
            raise ValueError(f"nodes must be a 1-D index tensor into the graph's {self.graph.num_nodes} nodes")

    def __len__(self) -> int:
        return len(self.nodes)

    def take(self, idx: torch.Tensor) -> Data:
        return self.graph

    def pick(self, outputs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return outputs[:, self.nodes[idx]]


class GCN(nn.Module):
    """Two-layer GCN: ``conv2(dropout(relu(conv1(x))))`` over the precomputed ``adj_t``."""

    def __init__(self, in_dim: int, hidden: int, num_classes: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = GCNConv(in_dim, hidden, normalize=False)
        self.conv2 = GCNConv(hidden, num_classes, normalize=False)
        self.dropout = dropout

    def forward(self, graph: Data) -> torch.Tensor:
        h = F.dropout(F.relu(self.conv1(graph.x, graph.adj_t)), self.dropout, self.training)
        return self.conv2(h, graph.adj_t)


class APPNPNet(nn.Module):
    """APPNP: logits ``lin2(dropout(relu(lin1(x))))`` propagated K steps, Z <- (1 - alpha) A Z + alpha H."""

    def __init__(self, in_dim: int, hidden: int, num_classes: int, dropout: float, alpha: float = 0.1, k: int = 10) -> None:
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(in_dim, hidden), nn.Linear(hidden, num_classes)
        self.propagate = APPNP(K=k, alpha=alpha, normalize=False)
        self.dropout = dropout

    def forward(self, graph: Data) -> torch.Tensor:
        h = F.dropout(F.relu(self.lin1(graph.x)), self.dropout, self.training)
        return self.propagate(self.lin2(h), graph.adj_t)


def build_gnn(arch: str, in_dim: int, num_classes: int, hidden: int, dropout: float, seed: int) -> nn.Module:
    """A GCN or APPNP network whose initial weights depend only on ``seed``.

    Raises:
        ValueError: an unknown architecture or invalid sizes.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    if in_dim < 1 or hidden < 1 or num_classes < 2 or not 0 <= dropout < 1:
        raise ValueError(f"invalid GNN: in_dim={in_dim}, hidden={hidden}, classes={num_classes}, dropout={dropout}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return (GCN if arch == "gcn" else APPNPNet)(in_dim, hidden, num_classes, dropout)
