"""How likely is the teacher's top-1 label to be right? Estimated from its confidence on a labelled validation set.

Shared by SLaM (alpha(x), notebook 02) and weighted distillation (1 - p(x), notebook 03): an isotonic regression of
"the teacher is right" on the teacher's top-1 - top-2 margin, monotone and without any bin count or other
hyper-parameter [R].
"""

from __future__ import annotations

import torch
from sklearn.isotonic import IsotonicRegression


def top1_margin(teacher_probs: torch.Tensor) -> torch.Tensor:
    """The teacher's confidence: its top-1 minus top-2 probability."""
    if teacher_probs.ndim != 2 or teacher_probs.shape[1] < 2:
        raise ValueError(f"teacher probabilities must be (N, C) with C >= 2, got shape {tuple(teacher_probs.shape)}")
    top2 = teacher_probs.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


def _check_validation(n_examples: int, n_labels: int) -> None:
    if n_examples == 0 or n_examples != n_labels:
        raise ValueError(f"need a non-empty validation set with one label per example, got {n_examples} and {n_labels}")


class MonotoneCorrectness:
    """P(correct | score) as a non-decreasing function of a score, fitted by isotonic regression, clipped to [floor, 1]."""

    def __init__(self, scores: torch.Tensor, correct: torch.Tensor, floor: float = 0.0) -> None:
        _check_validation(len(scores), len(correct))
        if not 0 <= floor <= 1:
            raise ValueError(f"floor must lie in [0, 1], got {floor}")
        self.floor = floor
        self.model = IsotonicRegression(y_min=floor, y_max=1.0, increasing=True, out_of_bounds="clip")
        self.model.fit(torch.as_tensor(scores).double().numpy(), torch.as_tensor(correct).double().numpy())

    def __call__(self, scores: torch.Tensor) -> torch.Tensor:
        """Estimated probability of being correct at each score."""
        return torch.from_numpy(self.model.predict(torch.as_tensor(scores).double().numpy())).float()


class CorrectnessCalibration(MonotoneCorrectness):
    """P(teacher's top-1 is right | its margin), fitted by isotonic regression on a labelled validation set.

    Predictions are clipped to ``[floor, 1]``; ``floor`` defaults to 1/C (a teacher no worse than chance).
    The validation set must be non-empty and hold at least two classes (one class says nothing about errors
    between classes).
    """

    def __init__(self, teacher_probs_val: torch.Tensor, labels_val: torch.Tensor, floor: float | None = None) -> None:
        labels_val = torch.as_tensor(labels_val)
        _check_validation(len(teacher_probs_val), len(labels_val))
        if len(labels_val.unique()) < 2:
            raise ValueError(f"the validation set holds a single class ({int(labels_val[0])}); it cannot measure the teacher's errors")
        correct = teacher_probs_val.argmax(1) == labels_val
        super().__init__(top1_margin(teacher_probs_val), correct, 1.0 / teacher_probs_val.shape[1] if floor is None else floor)

    def __call__(self, teacher_probs: torch.Tensor) -> torch.Tensor:
        """Estimated probability that the teacher's top-1 is right, for each row of ``teacher_probs``."""
        return super().__call__(top1_margin(teacher_probs))
