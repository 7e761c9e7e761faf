"""Architecture search: spaces as data, cost models, LayerNAS and the baselines behind one ``search`` entry point.

    from kdlib.nas import search, nb201_space
    result = search(nb201_space(), "layernas", budget=500, cost_limit=3e5, seed=0, base="cheapest", bucketing="equal-count")
"""

from kdlib.nas import baselines, layernas  # noqa: F401  (registers the strategies)
from kdlib.nas.graph_bench import graph_space
from kdlib.nas.layernas import coarse_bound, evaluation_bound
from kdlib.nas.nb201 import nb201_space
from kdlib.nas.proxy_cnn import proxy_cnn_space
from kdlib.nas.search import SearchResult, available_strategies, exhaustive, register_strategy, search
from kdlib.nas.space import Evaluation, Layer, SearchSpace, table_space
from kdlib.nas.synthetic import additive_space

__all__ = [
    "Evaluation",
    "Layer",
    "SearchResult",
    "SearchSpace",
    "additive_space",
    "available_strategies",
    "coarse_bound",
    "evaluation_bound",
    "exhaustive",
    "graph_space",
    "nb201_space",
    "proxy_cnn_space",
    "register_strategy",
    "search",
    "table_space",
]
