"""KD-Zero's distillers (Li et al., NeurIPS 2023): a loss composed from primitives, and its rejection before training.

A genome names transforms T_1..T_k (applied in order to both logits), a distance D and a weight w; its objective is

    L(s, t, y) = CE(y, s) + w * D(T_k(...T_1(s)), T_k(...T_1(t)))            (the notes' reconstruction, §3 [R])

per example (a batch-level distance, such as the correlation of each class over the batch, is shared equally by
the batch's examples, as in :mod:`kdlib.distill.dist`). The primitives follow the group's Auto-DAS code [Rel]
(``autodas/primitives``), including its ill-posed ones (raw log and sqrt, ``subtract``, ``lesser_than``): those are
what the loss-rejection protocol is for. :func:`rejection` says why a genome's term would be useless before any
training: non-finite values or gradients, a value that does not depend on the student, or no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from kdlib.distill.dist import pearson_rows
from kdlib.distill.kd import check_logits, label_cross_entropy, soft_kl, teacher_of
from kdlib.distill.registry import register_objective
from kdlib.registry import Registry
from kdlib.train import Batch

REJECTIONS = ("non-finite", "constant", "non-differentiable")


@dataclass(frozen=True)
class Primitive:
    """A transform ``z -> z'`` (B, K) or a distance ``(a, b) -> (B,)`` with its rendering (``{0}`` student, ``{1}`` teacher)."""

    fn: Callable[..., torch.Tensor]
    text: str
    latex: str

    def __call__(self, *args: torch.Tensor) -> torch.Tensor:
        return self.fn(*args)


TRANSFORMS: Registry[Primitive] = Registry("transform")
DISTANCES: Registry[Primitive] = Registry("distance")
_min_max = lambda z: (z - z.amin(1, keepdim=True)) / (z.amax(1, keepdim=True) - z.amin(1, keepdim=True) + 1e-9)  # noqa: E731
for _name, _fn, _text, _latex in [
    ("nop", lambda z: z, "{0}", "{0}"),
    ("softmax", lambda z: z.softmax(1), "softmax({0})", r"\sigma({0})"),
    ("softmax_T4", lambda z: (z / 4).softmax(1), "softmax({0}/4)", r"\sigma({0}/4)"),
    ("log_softmax", lambda z: z.log_softmax(1), "log_softmax({0})", r"\log\sigma({0})"),
    ("catt", lambda z: z.shape[1] * (z / 0.5).softmax(1), "K·softmax(2{0})", r"K\,\sigma(2{0})"),
    ("norm_C", lambda z: F.normalize(z, dim=1), "{0}/‖{0}‖_C", r"{0}/\|{0}\|_C"),
    ("norm_N", lambda z: F.normalize(z, dim=0), "{0}/‖{0}‖_N", r"{0}/\|{0}\|_N"),
    ("min_max", _min_max, "minmax_C({0})", r"\mathrm{{minmax}}_C({0})"),
    ("abs", torch.abs, "|{0}|", r"|{0}|"),
    ("pow2", torch.square, "({0})²", r"({0})^2"),
    ("sqrt", torch.sqrt, "sqrt({0})", r"\sqrt{{{0}}}"),
    ("log", torch.log, "log({0})", r"\log({0})"),
    ("exp", torch.exp, "exp({0})", r"e^{{{0}}}"),
    ("tanh", torch.tanh, "tanh({0})", r"\tanh({0})"),
    ("sigmoid", torch.sigmoid, "sigmoid({0})", r"\mathrm{{sig}}({0})"),
]:
    TRANSFORMS.register(_name)(Primitive(_fn, _text, _latex))
for _name, _fn, _text, _latex in [
    ("kl", lambda a, b: soft_kl(a, b, 1.0), "KL(softmax({1}) ‖ softmax({0}))", r"\mathrm{{KL}}\big(\sigma({1})\,\|\,\sigma({0})\big)"),
    ("kl_T4", lambda a, b: soft_kl(a, b, 4.0), "16·KL(softmax({1}/4) ‖ softmax({0}/4))", r"16\,\mathrm{{KL}}\big(\sigma({1}/4)\,\|\,\sigma({0}/4)\big)"),
    ("l1", lambda a, b: (a - b).abs().mean(1), "mean_C |{0} − {1}|", r"\overline{{|{0}-{1}|}}"),
    ("mse", lambda a, b: (a - b).square().mean(1), "mean_C ({0} − {1})²", r"\overline{{({0}-{1})^2}}"),
    ("smooth_l1", lambda a, b: F.smooth_l1_loss(a, b, reduction="none").mean(1), "mean_C huber({0} − {1})", r"\overline{{\mathrm{{huber}}({0}-{1})}}"),
    ("cosine", lambda a, b: 1 - F.cosine_similarity(a, b, dim=1, eps=1e-8), "1 − cos({0}, {1})", r"1-\cos({0},{1})"),
    ("pearson", lambda a, b: 1 - pearson_rows(a, b), "1 − pearson_C({0}, {1})", r"1-\rho_C({0},{1})"),
    ("pearson_intra", lambda a, b: (1 - pearson_rows(a.T, b.T)).mean().expand(len(a)), "1 − mean_C pearson_N({0}, {1})",
     r"1-\overline{{\rho_N({0},{1})}}"),
    ("subtract", lambda a, b: (a - b).mean(1), "mean_C ({0} − {1})", r"\overline{{{0}-{1}}}"),
    ("lesser_than", lambda a, b: (a < b).float().mean(1), "mean_C [{0} < {1}]", r"\overline{{[{0}<{1}]}}"),
]:
    DISTANCES.register(_name)(Primitive(_fn, _text, _latex))


@dataclass(frozen=True)
class Genome:
    """A distiller: transforms applied in order to both logits, a distance between the results and its weight."""

    transforms: tuple[str, ...]
    distance: str
    weight: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "transforms", tuple(self.transforms))
        object.__setattr__(self, "weight", float(self.weight))
        for name in self.transforms:
            TRANSFORMS.get(name)  # unknown names raise, listing the known ones
        DISTANCES.get(self.distance)
        if not self.weight > 0:
            raise ValueError(f"a genome's weight must be > 0, got {self.weight}")

    def spec(self) -> dict:
        """The genome as a plain-data objective spec: ``get_objective(**genome.spec())`` builds its objective."""
        return {"name": "kdzero", "transforms": list(self.transforms), "distance": self.distance, "weight": self.weight}


class ComposedDistiller:
    """The objective of a genome: ``CE(y, s) + w * D(T(s), T(t))`` per example."""

    def __init__(self, genome: Genome) -> None:
        self.genome = genome
        self.transforms = [TRANSFORMS.get(name) for name in genome.transforms]
        self.distance = DISTANCES.get(genome.distance)

    def term(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """The distillation term ``w * D(T(s), T(t))``, (B,)."""
        for transform in self.transforms:
            student, teacher = transform(student), transform(teacher)
        return self.genome.weight * self.distance(student, teacher)

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        teacher = teacher_of(batch)
        check_logits(outputs, batch.labels, teacher)
        return label_cross_entropy(outputs, batch.labels) + self.term(outputs, teacher)


def compose(genome: Genome) -> ComposedDistiller:
    """The objective (engine contract: ``(outputs (B, K), batch) -> (B,)``) of ``genome``."""
    return ComposedDistiller(genome)


@register_objective("kdzero")
def kdzero(transforms: list[str] | tuple[str, ...], distance: str, weight: float) -> ComposedDistiller:
    """The registered factory: the objective of the genome with these fields (plain data, as grid cells hold them)."""
    return compose(Genome(tuple(transforms), distance, weight))


def rejection(genome: Genome, student: torch.Tensor, teacher: torch.Tensor) -> str | None:
    """Why ``genome``'s term is rejected before training, or None: on student logits at initialisation and the
    teacher's logits of the same batch, a non-finite value or gradient (``"non-finite"``), the same value when the
    student is replaced by its teacher (``"constant"``: it does not depend on the student), or a gradient that is
    absent or zero (``"non-differentiable"``)."""
    term = compose(genome).term
    probe = student.detach().clone().requires_grad_(True)
    values = term(probe, teacher)
    if not torch.isfinite(values).all():
        return "non-finite"
    with torch.no_grad():
        if torch.allclose(values, term(teacher, teacher), rtol=1e-5, atol=1e-6):
            return "constant"
    if not values.requires_grad:
        return "non-differentiable"
    (grad,) = torch.autograd.grad(values.sum(), probe, allow_unused=True)
    if grad is not None and not torch.isfinite(grad).all():
        return "non-finite"
    return "non-differentiable" if grad is None or grad.abs().max() < 1e-10 else None


def formula(genome: Genome, latex: bool = False) -> str:
    """The genome's loss as text, e.g. ``CE(y, s) + 25·[1 − pearson_C(softmax(s), softmax(t))]``, or as LaTeX."""
    render = (lambda p: p.latex) if latex else (lambda p: p.text)  # noqa: E731
    s, t = "s", "t"
    for name in genome.transforms:
        template = render(TRANSFORMS.get(name))
        s, t = template.format(s), template.format(t)
    term = render(DISTANCES.get(genome.distance)).format(s, t)
    if latex:
        return rf"\mathrm{{CE}}(y, s) + {genome.weight:g}\,\left[{term}\right]"
    return f"CE(y, s) + {genome.weight:g}·[{term}]"
