"""LELP (Loo, Iliopoulos, Hu & Vee 2024): pseudo-subclass targets from linear projections of teacher embeddings.

Fit once on the teacher's training embeddings h(x) and its output layer W (C x D):

1. project onto the null space of W, ``P = I - W^T (W W^T)^+ W`` (what the logits already carry is removed);
2. per class c, the top-S principal directions V_c of the projected, class-centred embeddings;
3. a fixed random orthonormal rotation Q_c (S x S): ``U_c = V_c Q_c`` spreads the variance over the S directions.

Targets: ``p(c, s | x) = p_c(x) * softmax_s(z_cs(x) / beta)`` with ``z_c(x) = (P h(x) - mu_c) U_c``; they sum to the
teacher's class probability p_c(x) (teacher logits at temperature tau). The student has C*S outputs and is trained
with one cross-entropy on these targets (see :mod:`kdlib.distill.subclass`).

Reconstructed details [R], stated in notebook 01: centring by the class mean mu_c, and ``z`` divided by one RMS
scale per class (measured on the fitting data) so that ``beta`` is in units of the scores' spread on any teacher.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from kdlib.distill.registry import register_objective
from kdlib.distill.subclass import SubclassTargets, check_class_probs, subclass_targets


@dataclass(frozen=True)
class SubclassProjection:
    """Per-class linear maps from a teacher embedding to S subclass scores."""

    projector: torch.Tensor  # (D, D): the null-space projector P (identity without the null-space step)
    means: torch.Tensor  # (C, D): class means of the projected embeddings
    directions: torch.Tensor  # (C, D, S): orthonormal columns u_{c,s}
    scale: torch.Tensor  # (C,): RMS of the class-c scores on the class-c fitting embeddings

    @property
    def num_subclasses(self) -> int:
        return self.directions.shape[2]

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        """z (N, C, S): every example's scores under every class's directions, in RMS units."""
        if embeddings.ndim != 2 or embeddings.shape[1] != self.projector.shape[0]:
            raise ValueError(f"embeddings must be (N, {self.projector.shape[0]}), got {tuple(embeddings.shape)}")
        projected = embeddings.double() @ self.projector  # (N, D)
        centred = projected[:, None, :] - self.means[None]  # (N, C, D)
        z = torch.einsum("ncd,cds->ncs", centred, self.directions)
        return (z / self.scale[None, :, None]).float()


def null_space_projector(head_weight: torch.Tensor) -> torch.Tensor:
    """``I - W^T (W W^T)^+ W``: the orthogonal projector onto the null space of the rows of W (C x D)."""
    w = head_weight.double()
    return torch.eye(w.shape[1], dtype=torch.float64) - w.T @ torch.linalg.pinv(w @ w.T) @ w


def fit_projection(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    head_weight: torch.Tensor,
    num_subclasses: int,
    *,
    null_space: bool = True,
    directions: Literal["pca", "random"] = "pca",
    seed: int = 0,
) -> SubclassProjection:
    """Fit LELP's projections on teacher embeddings (N, D) with class labels (N,).

    ``directions="random"`` is the control: random orthonormal directions in the same (projected) space,
    with the same per-class RMS normalisation, so they match LELP's score variance.
    """
    if num_subclasses < 1:
        raise ValueError(f"num_subclasses (S) must be >= 1, got {num_subclasses}")
    if directions not in ("pca", "random"):
        raise ValueError(f"directions must be 'pca' or 'random', got {directions!r}")
    if embeddings.ndim != 2 or labels.shape != embeddings.shape[:1]:
        raise ValueError(f"need embeddings (N, D) and labels (N,), got {tuple(embeddings.shape)} and {tuple(labels.shape)}")
    num_classes, dim = head_weight.shape
    if embeddings.shape[1] != dim:
        raise ValueError(f"embeddings have {embeddings.shape[1]} dims but the head expects {dim}")
    if num_subclasses > dim:
        raise ValueError(f"S = {num_subclasses} exceeds the embedding dimension {dim}")
    generator = torch.Generator().manual_seed(seed)
    projector = null_space_projector(head_weight) if null_space else torch.eye(dim, dtype=torch.float64)
    projected = embeddings.double() @ projector
    means, bases, scales = [], [], []
    for c in range(num_classes):
        members = projected[labels == c]
        if len(members) < 2:
            raise ValueError(f"class {c} has {len(members)} fitting examples; LELP needs at least 2 per class")
        mean = members.mean(0)
        if directions == "pca":
            basis = torch.linalg.svd(members - mean, full_matrices=False).Vh[:num_subclasses].T  # (D, S)
        else:
            gaussian = torch.randn(dim, num_subclasses, generator=generator, dtype=torch.float64)
            basis = torch.linalg.qr(projector @ gaussian).Q
        rotation = torch.linalg.qr(torch.randn(num_subclasses, num_subclasses, generator=generator, dtype=torch.float64)).Q
        basis = basis @ rotation
        z = (members - mean) @ basis
        means.append(mean)
        bases.append(basis)
        scales.append(z.pow(2).mean().sqrt().clamp_min(1e-12))
    return SubclassProjection(projector, torch.stack(means), torch.stack(bases), torch.stack(scales))


def lelp_targets(
    teacher_logits: torch.Tensor, embeddings: torch.Tensor, projection: SubclassProjection, temperature: float, beta: float
) -> torch.Tensor:
    """LELP's (N, C, S) targets: ``softmax(teacher_logits / tau)_c * softmax_s(z_cs / beta)``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    class_probs = torch.softmax(teacher_logits.float() / temperature, dim=1)
    check_class_probs(class_probs)
    return subclass_targets(class_probs, projection.scores(embeddings), beta)


@register_objective("lelp")
def lelp(teacher_logits: torch.Tensor, embeddings: torch.Tensor, fit_embeddings: torch.Tensor, fit_labels: torch.Tensor,
         head_weight: torch.Tensor, subclasses: int, beta: float, temperature: float = 1.0, null_space: bool = True,
         directions: Literal["pca", "random"] = "pca", seed: int = 0) -> SubclassTargets:
    """LELP's objective on a transfer set: projections fitted on the teacher's fitting embeddings, targets from the
    transfer set's teacher logits and embeddings. ``null_space=False`` and ``directions="random"`` are its controls."""
    projection = fit_projection(fit_embeddings, fit_labels, head_weight, subclasses, null_space=null_space, directions=directions, seed=seed)
    return SubclassTargets(lelp_targets(teacher_logits, embeddings, projection, temperature, beta))
