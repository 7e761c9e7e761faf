"""GNNs from PyTorch Geometric and a graph's nodes as inputs of the one training engine (kdlib.models.gnn)."""

import numpy as np
import pytest
import torch
from torch_geometric.nn import GCNConv

from kdlib.data.dataset import GraphDataset
from kdlib.distill import get_objective
from kdlib.models.gnn import APPNPNet, GraphNodes, build_gnn, graph_input, normalized_adjacency, planetoid_graph, sparse_csr
from kdlib.train import TrainConfig, TrainSet, evaluate, fit, predict_outputs

# a directed toy graph: 0 -> 1, 1 -> 2, 2 -> 0, 0 -> 2, 3 -> 0 (node 3 has no in-edges)
EDGES = torch.tensor([[0, 1, 2, 0, 3], [1, 2, 0, 2, 0]])


def two_communities(n: int = 40, seed: int = 0):
    """Two dense communities joined by a few edges; features are noisy class indicators (a separable toy graph)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 2
    same = (y[:, None] == y[None, :]) & (torch.rand(n, n, generator=g) < 0.3)
    cross = torch.rand(n, n, generator=g) < 0.02
    adjacency = (same | cross).triu(1)
    adjacency = adjacency | adjacency.T
    x = torch.nn.functional.one_hot(y, 2).float() + 0.5 * torch.randn(n, 2, generator=g)
    return graph_input(x, adjacency.nonzero().T.contiguous()), y


def test_normalized_adjacency_is_symmetric_gcn_normalisation_of_the_transposed_graph():
    dense = torch.zeros(4, 4)
    dense[EDGES[1], EDGES[0]] = 1.0  # row = target
    dense += torch.eye(4)
    degree = dense.sum(1)
    expected = dense / degree.sqrt()[:, None] / degree.sqrt()[None, :]
    assert torch.allclose(normalized_adjacency(EDGES, 4).to_dense(), expected)
    with pytest.raises(ValueError, match=r"\(2, E\)"):
        normalized_adjacency(EDGES.T, 4)


def test_gcn_layer_on_the_precomputed_adjacency_equals_pyg_own_normalisation():
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    own = GCNConv(3, 2)  # normalises edge_index itself (gcn_norm with self-loops)
    ours = GCNConv(3, 2, normalize=False)
    ours.load_state_dict(own.state_dict())
    assert torch.allclose(ours(x, normalized_adjacency(EDGES, 4)), own(x, EDGES), atol=1e-6)


def test_build_gnn_is_seeded_and_shaped():
    graph, _ = two_communities()
    for arch in ("gcn", "appnp"):
        a, b, c = (build_gnn(arch, 2, 3, 8, 0.3, seed) for seed in (0, 0, 1))
        assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
        assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))
        assert a.eval()(graph).shape == (40, 3)
    with pytest.raises(ValueError, match="arch must be one of"):
        build_gnn("gat", 2, 3, 8, 0.3, 0)
    with pytest.raises(ValueError, match="invalid GNN"):
        build_gnn("gcn", 2, 1, 8, 0.3, 0)


def test_appnp_propagates_k_steps_of_personalised_pagerank():
    graph, _ = two_communities()
    model = build_gnn("appnp", 2, 2, 8, 0.0, 0).eval()
    assert isinstance(model, APPNPNet)
    with torch.no_grad():
        h = model.lin2(torch.relu(model.lin1(graph.x)))
        z = h
        adjacency = graph.adj_t.to_dense()
        for _ in range(10):
            z = 0.9 * adjacency @ z + 0.1 * h
        assert torch.allclose(model(graph), z, atol=1e-5)


def test_graph_nodes_score_the_whole_graph_on_node_indices():
    graph, y = two_communities()
    nodes = GraphNodes(graph, torch.tensor([5, 2, 7]))
    assert len(nodes) == 3 and nodes.take(torch.tensor([0])) is graph
    outputs = torch.arange(40.0).reshape(1, 40, 1)
    assert nodes.pick(outputs, torch.tensor([2, 0])).flatten().tolist() == [7.0, 5.0]
    with pytest.raises(ValueError, match="index tensor into the graph's 40 nodes"):
        GraphNodes(graph, torch.tensor([40]))


def test_fit_trains_full_batch_on_node_indices():
    graph, y = two_communities()
    train, test = torch.arange(0, 10), torch.arange(10, 40)
    model = build_gnn("gcn", 2, 2, 16, 0.3, 0)
    history = fit(model, get_objective("ce"), TrainSet(GraphNodes(graph, train), y[train]), config=TrainConfig(epochs=60, batch_size=1 << 30, lr=0.05),
                  seed=0, val=(GraphNodes(graph, test), y[test]), progress=False)
    assert history.steps <= 60  # one step per epoch: full batch
    assert evaluate(model, GraphNodes(graph, test), y[test]) > 0.9
    assert predict_outputs(model, GraphNodes(graph, test)).shape == (30, 2)


def test_planetoid_graph_row_normalises_sparse_features():
    x = np.array([[1, 0, 1], [0, 0, 0], [0, 1, 0]], dtype=np.float32)
    mask = np.array([True, False, False])
    data = GraphDataset("toy", "full", x, np.array([0, 1, 0]), np.array([[0, 1], [1, 0]]), mask, ~mask, np.zeros(3, bool), ("a", "b"))
    graph = planetoid_graph(data)
    assert graph.x.layout == torch.sparse_csr
    assert torch.allclose(graph.x.to_dense(), torch.tensor([[0.5, 0, 0.5], [0, 0, 0], [0, 1, 0]]))
    assert graph.adj_t.shape == (3, 3) and sparse_csr(graph.adj_t) is graph.adj_t
