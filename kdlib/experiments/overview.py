"""Dataset overview for notebook 00: sizes, class balance, samples."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from kdlib.data import GraphDataset, available, load, spec


def dataset_table() -> pd.DataFrame:
    """One row per dataset split: modality, size, classes, smallest / largest class share."""
    rows = []
    for name in available():
        for split in spec(name).splits:
            data = load(name, split)
            counts = data.class_counts()
            rows.append(
                {
                    "dataset": name,
                    "split": split,
                    "modality": data.modality,
                    "examples": len(data),
                    "classes": data.num_classes,
                    "min class %": round(100 * counts.min() / counts.sum(), 1),
                    "max class %": round(100 * counts.max() / counts.sum(), 1),
                    "note": _graph_note(data) if isinstance(data, GraphDataset) else "",
                }
            )
    return pd.DataFrame(rows).set_index(["dataset", "split"])


def _graph_note(graph: GraphDataset) -> str:
    return (
        f"{graph.edge_index.shape[1]} directed edges, {graph.x.shape[1]} features; "
        f"public split {int(graph.train_mask.sum())}/{int(graph.val_mask.sum())}/{int(graph.test_mask.sum())}"
    )


def text_samples(per_dataset: int = 2, max_chars: int = 110) -> pd.DataFrame:
    """The first ``per_dataset`` training texts of each text dataset, with their class."""
    rows = []
    for name in available():
        data = load(name, spec(name).splits[0])
        if data.modality != "text":
            continue
        for i in range(per_dataset):
            text = data.x[i]
            rows.append({"dataset": name, "class": data.classes[data.y[i]], "text": text if len(text) <= max_chars else text[: max_chars - 1] + "…"})
    return pd.DataFrame(rows).set_index("dataset")


def image_grid(datasets: tuple[str, ...] = ("fashion_mnist", "cifar10", "digits"), per_class: int = 1) -> plt.Figure:
    """One row per dataset, the first training image(s) of every class."""
    fig, axes = plt.subplots(len(datasets), 10 * per_class, figsize=(10 * per_class, 1.25 * len(datasets)))
    for row, name in enumerate(datasets):
        data = load(name, "train")
        for c in range(10):
            for k, i in enumerate(np.flatnonzero(data.y == c)[:per_class]):
                ax = axes[row, c * per_class + k]
                ax.imshow(data.x[i], cmap="gray" if data.x.ndim == 3 else None)
                ax.set_xticks([])
                ax.set_yticks([])
                if k == 0:
                    ax.set_title(data.classes[c][:11], fontsize=7)
        axes[row, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig
