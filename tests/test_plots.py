"""Figures that compute what they show: the differences to a baseline."""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from kdlib.plots import differences_to_baseline, method_palette  # noqa: E402


def _frame() -> pd.DataFrame:
    rows = []
    for task in ("b |L|=50", "a |L|=100"):
        for seed, (base, method) in enumerate([(0.50, 0.53), (0.60, 0.61), (0.55, 0.59)]):
            rows += [{"experiment": task, "seed": seed, "method": "base", "value": base}, {"experiment": task, "seed": seed, "method": "m", "value": method}]
    return pd.DataFrame(rows)


def test_differences_to_baseline_plots_paired_differences_in_the_given_order():
    g = differences_to_baseline(_frame(), ["m"], method_palette(["m"]), baseline="base", errorbar=("ci", 95), order=["b |L|=50", "a |L|=100"])
    assert list(g.axes_dict) == ["b |L|=50", "a |L|=100"]
    dots = g.axes_dict["b |L|=50"].collections[0].get_offsets()[:, 1]
    assert sorted(dots.round(6)) == pytest.approx([1.0, 3.0, 4.0])  # pp, replicate by replicate
    with pytest.raises(ValueError, match="baseline"):
        differences_to_baseline(_frame(), ["m"], method_palette(["m"]), baseline="missing")
