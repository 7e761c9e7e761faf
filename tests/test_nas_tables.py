"""The tabular benchmarks shipped in wheels (analog-nasbench, nas-bench-graph): loading, encoding and spaces."""

import importlib.util

import numpy as np
import pytest

from kdlib.cache import Cache
from kdlib.nas import graph_bench, nb201, search

needs_nb201 = pytest.mark.skipif(importlib.util.find_spec("analognasbench") is None, reason="analog-nasbench not installed")
needs_graph = pytest.mark.skipif(importlib.util.find_spec("nas_bench_graph") is None, reason="nas-bench-graph not installed")


@pytest.fixture(scope="module")
def nb201_accuracy(tmp_path_factory):
    return nb201._read_table(nb201.table_path())


@needs_nb201
def test_nb201_table_matches_the_notes(nb201_accuracy):
    assert nb201_accuracy.shape == (5,) * 6
    # notes: best baseline accuracy 94.0664 (94.07), on the cell conv3x3, conv3x3, skip, conv3x3, conv1x1, conv3x3
    assert nb201_accuracy.max() == pytest.approx(0.940664)
    best = tuple(int(i) for i in np.unravel_index(nb201_accuracy.argmax(), nb201_accuracy.shape))
    assert [nb201.OPS[op] for op in best] == ["nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_1x1", "nor_conv_3x3"]


@needs_nb201
def test_nb201_encoding_dead_cells_are_at_chance(nb201_accuracy):
    # the inferred op ids and edge order: exactly the cells whose output is cut off from the input score 10.0%
    dead = {cell for cell in np.ndindex(nb201_accuracy.shape) if not nb201.output_connected(cell)}
    at_chance = {cell for cell in np.ndindex(nb201_accuracy.shape) if nb201_accuracy[cell] == pytest.approx(0.10)}
    assert len(dead) == 341 and dead == at_chance


@needs_nb201
def test_nb201_space(tmp_path):
    space = nb201.nb201_space("params", Cache(tmp_path))
    assert space.size == 15_625 and space.min_cost == 73_306 and space.max_cost == 1_531_546
    assert space.base_arch("largest") == (nb201.OPS.index("nor_conv_3x3"),) * 6
    assert space.base_arch("cheapest") == (nb201.OPS.index("skip_connect"),) * 6  # the first of the weightless ops
    result = search(space, "layernas", budget=1000, cost_limit=space.cost_quantile(0.5), seed=0, base="largest", bucketing="equal-width")
    assert result.cost <= space.cost_quantile(0.5) and result.reward == result.report  # one accuracy in the table
    with pytest.raises(ValueError, match="cost_model"):
        nb201.nb201_space("flops")


@needs_nb201
def test_nb201_unpickler_refuses_foreign_classes(tmp_path):
    import pickle

    path = tmp_path / "evil.anb"
    path.write_bytes(pickle.dumps({(0,) * 6: Cache()}))
    with pytest.raises(pickle.UnpicklingError, match="unexpected class"):
        nb201._read_table(path)


@needs_graph
def test_graph_space(tmp_path):
    space = graph_bench.graph_space("cora", "latency", Cache(tmp_path))
    assert space.shape == (9, 9, 9, 9, 9) and space.size == 9**5 - 9  # only the all-skip combinations are missing
    assert len({space.identity(a) for a in space.all_archs()}) == 26_206
    # DATA.md's example: Arch([0,1,2,1], ['gcn','gin','fc','cheb']) -> valid_perf 0.79, perf 0.805
    links, ops = graph_bench.layer_options()
    from nas_bench_graph import Arch

    key = Arch([0, 1, 2, 1], ["gcn", "gin", "fc", "cheb"]).valid_hash()
    table = graph_bench.load_table("cora")
    assert table[key]["perf"] == pytest.approx(0.805, abs=1e-3)
    found = [a for a in space.all_archs() if space.identity(a) == key]
    assert found and space.evaluate(found[0]).report == pytest.approx(table[key]["perf"])
    assert space.evaluate(found[0]).reward == pytest.approx(table[key]["valid_perf"])
    # the per-layer cheapest options (all skip) are no network: the base falls back to the cheapest that agrees on most
    assert space.describe(space.base_arch("cheapest")) == "link=0000 op1=fc op2=skip op3=skip op4=skip"
    assert space.describe(space.base_arch("largest")) == "link=0122 op1=cheb op2=cheb op3=cheb op4=cheb"
    with pytest.raises(ValueError, match="dataset must be one of"):
        graph_bench.graph_space("imagenet", cache=Cache(tmp_path))
