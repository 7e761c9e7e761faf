"""SLaM (Kontonis et al., NeurIPS 2023): student-label mixing for distillation with unlabelled examples.

The teacher's label y_s(x) on an unlabelled example is treated as a noisy observation of the truth. With
probability alpha(x) it is right; otherwise it is another class among the teacher's top k(x). The student f is
trained through that noise model (a forward loss correction) and predicts with the unmixed f:

    mix(f; alpha, k) = alpha * f + (1 - alpha) * (1 - f) * top_k(y_s)            (the paper's experiments, Remark B.1)
    mix(f; alpha, k) = alpha * f + (1 - alpha) * (1 - f) * top_k(y_s) / (k - 1)  ("normalised": the noise model's form)
    loss(x) = CE(y_s(x), mix(f(x); alpha(x), k(x)))

alpha(x) is estimated on a small labelled validation set as a function of the teacher's confidence (isotonic
regression of "teacher is right" on its top-1 margin) and k from the teacher's top-k accuracy there. Both
estimators are reconstructions [R] (the paper's own could not be read); see notebook 02.
"""

from __future__ import annotations

import torch

from kdlib.distill.kd import teacher_of
from kdlib.distill.registry import register_objective
from kdlib.distill.teacher_labels import Target, on_labels_and_pool, teacher_targets
from kdlib.train import Batch

# The unnormalised mix is a correction only where alpha >= 1/2: d mix_y / d f_y = 2 alpha - 1, so below 1/2 a higher
# student probability of the teacher's label *lowers* its mixed probability and the loss pushes the student away from
# the label (notes 02 §6, pilot lesson 2). Estimates of alpha are restricted to [VALID_ALPHA, 1].
VALID_ALPHA = 0.5


def top_k_mask(teacher_probs: torch.Tensor, k: torch.Tensor | int) -> torch.Tensor:
    """0/1 mask (N, C) of each row's k largest teacher probabilities (``k`` a scalar or one per row)."""
    if teacher_probs.ndim != 2:
        raise ValueError(f"teacher probabilities must be (N, C), got shape {tuple(teacher_probs.shape)}")
    num_classes = teacher_probs.shape[1]
    k = torch.as_tensor(k).expand(len(teacher_probs)) if torch.as_tensor(k).ndim == 0 else torch.as_tensor(k)
    if k.shape != (len(teacher_probs),):
        raise ValueError(f"k must be a scalar or one value per example, got shape {tuple(k.shape)}")
    if (k < 1).any() or (k > num_classes).any():
        raise ValueError(f"k must lie in [1, {num_classes}], got values in [{int(k.min())}, {int(k.max())}]")
    ranks = teacher_probs.argsort(dim=1, descending=True).argsort(dim=1)  # rank 0 = the teacher's top class
    return (ranks < k[:, None]).to(teacher_probs.dtype)


def check_alpha(alpha: torch.Tensor) -> None:
    if ((alpha < 0) | (alpha > 1) | torch.isnan(alpha)).any():
        raise ValueError("alpha must lie in [0, 1]")


def check_mix(alpha: torch.Tensor, mask: torch.Tensor, normalise: bool) -> None:
    """Raise unless alpha (N,) lies in [0, 1] and the mask (N, C) is a valid top-k mask for the chosen mix."""
    check_alpha(alpha)
    if mask.ndim != 2 or alpha.shape != mask.shape[:1]:
        raise ValueError(f"need alpha (N,) and a mask (N, C), got {tuple(alpha.shape)} and {tuple(mask.shape)}")
    if normalise and (mask.sum(-1) < 2).any():
        raise ValueError("the normalised mix needs k >= 2 for every example")


def _mixed(student_probs: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor, normalise: bool) -> torch.Tensor:
    other = (1.0 - student_probs) * mask
    if normalise:
        other = other / (mask.sum(-1, keepdim=True) - 1.0)
    return alpha[:, None] * student_probs + (1.0 - alpha[:, None]) * other


def mix(student_probs: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor, normalise: bool = False) -> torch.Tensor:
    """``alpha * f + (1 - alpha) * (1 - f) * mask`` (divided by ``k - 1`` when ``normalise``), row-wise; shapes (..., N, C)."""
    check_mix(alpha, mask, normalise)
    if mask.shape != student_probs.shape[-2:]:
        raise ValueError(f"probabilities (..., N, C) {tuple(student_probs.shape)} do not match the mask {tuple(mask.shape)}")
    return _mixed(student_probs, alpha, mask, normalise)


def slam_loss(student_logits: torch.Tensor, teacher_targets: torch.Tensor, alpha: torch.Tensor, mask: torch.Tensor, normalise: bool = False) -> torch.Tensor:
    """Per-example ``CE(teacher_targets, mix(softmax(student_logits)))``, shape (..., N)."""
    mixed = mix(torch.softmax(student_logits, dim=-1), alpha, mask, normalise)
    return -(teacher_targets * torch.log(mixed.clamp_min(1e-12))).sum(-1)


@register_objective("slam")
class SLaM:
    """CE on L's labels; on the pool, ``CE(teacher label, mix(softmax(student); alpha, mask))``.

    ``alpha`` (N,) and ``mask`` (N, C) are aligned with the training set (rows of labelled examples are ignored).
    """

    def __init__(self, alpha: torch.Tensor, mask: torch.Tensor, normalise: bool = False, target: Target = "soft") -> None:
        alpha, mask = torch.as_tensor(alpha, dtype=torch.float32), torch.as_tensor(mask, dtype=torch.float32)
        check_mix(alpha, mask, normalise)
        teacher_targets(torch.zeros(1, 2), target)
        self.alpha, self.mask, self.normalise, self.target = alpha, mask, normalise, target

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        targets = teacher_targets(teacher_of(batch), self.target)
        alpha, mask = self.alpha.to(outputs.device)[batch.index], self.mask.to(outputs.device)[batch.index]
        mixed = _mixed(torch.softmax(outputs, dim=-1), alpha, mask, self.normalise)
        return on_labels_and_pool(outputs, batch, -(targets * torch.log(mixed.clamp_min(1e-12))).sum(-1))


def estimate_k(teacher_probs_val: torch.Tensor, labels_val: torch.Tensor, delta: float = 0.05) -> int:
    """The smallest k >= 2 whose top-k teacher accuracy on validation reaches ``1 - delta`` (C if none does)."""
    if not 0 < delta < 1:
        raise ValueError(f"delta must lie in (0, 1), got {delta}")
    if len(teacher_probs_val) == 0:
        raise ValueError("cannot estimate k on an empty validation set")
    num_classes = teacher_probs_val.shape[1]
    rank_of_truth = (teacher_probs_val > teacher_probs_val.gather(1, torch.as_tensor(labels_val)[:, None])).sum(1)
    for k in range(2, num_classes + 1):
        if (rank_of_truth < k).double().mean().item() >= 1 - delta:
            return k
    return num_classes


def oracle_alpha(teacher_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """alpha(x) = 1 if the teacher's top-1 is right, else 0 (the upper bound that knows the truth)."""
    return (teacher_probs.argmax(1) == torch.as_tensor(labels)).float()

