"""Knowledge distillation as partial variance reduction (Safaryan, Peste & Alistarh, NeurIPS 2023; official code
IST-DASLab/KDVR, ``utils/kd_utils.py``).

Objective ``F(x) = E_xi f_xi(x)`` with ``f_xi(x) = CE(z_x(a_xi), y_xi) + (mu/2)||x||^2``; student x, teacher theta of
the same architecture; B a mini-batch. For a linear softmax student and T = 1 the gradient of the standard KD loss
``(1 - lam) CE(y) + lam KL(p_theta || p_x)`` (registered as ``"kd"`` with ``alpha = lam``) is exactly

    grad_x KD_B(x) = a (p_x - y)^T - lam a (p_theta - y)^T = grad CE_B(x) - lam grad CE_B(theta)      (identity)

so KD subtracts lam x the teacher's stochastic gradient on the same sample: a control variate. The official
"modified" KD (``train_epoch_modified_KD``, with ``--teacher_wd`` and ``--teacher_full_grad``) steps along

    g = grad f_B(x) - lam grad f_B(theta)  [+ lam grad F(theta)]                                       (distillation gradient)

with the bracket it is SVRG anchored at the teacher (unbiased); without it E g = grad F(x) - lam grad F(theta), so the
iterates drift to x_hat with grad F(x_hat) = lam grad F(theta). Classic SVRG is the bracketed form with lam = 1 and
theta a snapshot of the student refreshed every few epochs. The noise at the optimum is quadratic in lam,

    sigma^2(lam) = E||grad f_xi(x*) - lam grad f_xi(theta)||^2,   lam* = E<grad f_xi(x*), grad f_xi(theta)> / E||grad f_xi(theta)||^2,

so theta = x* gives lam* = 1 and sigma^2(1) = 0, and a worse teacher a partial reduction at lam* < 1. A batch of B
examples drawn with replacement has noise sigma^2 / B.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from kdlib.distill.registry import get_objective
from kdlib.train import Batch, UpdateContext


@dataclass(frozen=True)
class Rule:
    """How one student forms its gradient: ``lam`` (x ``decay`` per epoch), ``full`` adds ``lam grad F(theta)``;
    ``svrg = (start, every)``: plain SGD until epoch ``start``, then theta := the student every ``every`` epochs."""

    lam: float = 0.0
    decay: float = 1.0
    full: bool = False
    svrg: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lambda (the distillation weight) must be in [0, 1], got {self.lam}")
        if not 0.0 < self.decay <= 1.0:
            raise ValueError(f"the lambda decay factor per epoch must be in (0, 1], got {self.decay}")
        if self.svrg is not None and (self.svrg[0] < 0 or self.svrg[1] < 1 or not self.full):
            raise ValueError(f"svrg=(start >= 0, every >= 1) needs full=True, got svrg={self.svrg}, full={self.full}")

    def lam_at(self, epoch: int) -> float:
        started = self.svrg is None or epoch >= self.svrg[0]
        return self.lam * self.decay**epoch if started else 0.0


def batch_gradients(stack: nn.Module, x: torch.Tensor, labels: torch.Tensor, l2: float) -> list[torch.Tensor]:
    """``grad f_B(w_m)`` for every student m of ``stack`` (mean CE on the batch + ``l2 * w_m``), parameter by parameter."""
    with torch.enable_grad():
        logits = stack(x)
        loss = F.cross_entropy(logits.flatten(0, 1), labels.repeat(len(logits)), reduction="sum") / len(x)
        grads = torch.autograd.grad(loss, list(stack.parameters()))
    return [g + l2 * p.detach() for g, p in zip(grads, stack.parameters())]


def full_gradients(stack: nn.Module, x: torch.Tensor, labels: torch.Tensor, l2: float, chunk: int = 4096) -> list[torch.Tensor]:
    """``grad F(w_m)`` over the whole training set (chunked)."""
    parts = [batch_gradients(stack, x[s:s + chunk], labels[s:s + chunk], 0.0) for s in range(0, len(x), chunk)]
    sizes = [len(x[s:s + chunk]) for s in range(0, len(x), chunk)]
    return [sum(n * g[i] for n, g in zip(sizes, parts)) / len(x) + l2 * p.detach() for i, p in enumerate(stack.parameters())]


class DistillationGradient:
    """``fit``'s update for a stack whose students follow :class:`Rule` s: each steps along its distillation gradient.

    The students' own losses must be the plain CE (``"ce"``); the optimiser (SGD) adds ``mu x`` itself, so the
    engine's ``weight_decay`` is ``mu`` and ``l2`` here is the teacher's ``mu`` (``--teacher_wd``). ``anchors`` holds
    theta_m per student (a stack of the students' architecture); SVRG students overwrite theirs with snapshots.
    """

    def __init__(self, anchors: nn.Module, rules: list[Rule], x: torch.Tensor, labels: torch.Tensor, l2: float, steps_per_epoch: int) -> None:
        if len(rules) != anchors.num_students:
            raise ValueError(f"need one rule per student: {anchors.num_students} students, {len(rules)} rules")
        self.anchors, self.rules, self.x, self.labels, self.l2, self.steps_per_epoch = anchors, rules, x, labels, l2, steps_per_epoch
        self.lam = torch.zeros(len(rules), dtype=torch.float64)
        self.full = torch.tensor([r.full for r in rules], dtype=torch.float64)
        self.anchor_full = full_gradients(anchors, x, labels, l2) if any(r.full and r.svrg is None for r in rules) else None

    def begin_epoch(self, epoch: int, stack: nn.Module) -> None:
        """Set this epoch's lam_m; take the SVRG snapshots that fall due (theta_m := x_m, refresh grad F(theta_m))."""
        due = [m for m, r in enumerate(self.rules) if r.svrg and epoch >= r.svrg[0] and (epoch - r.svrg[0]) % r.svrg[1] == 0]
        if due:
            with torch.no_grad():
                for anchor, own in zip(self.anchors.parameters(), stack.parameters()):
                    anchor[due] = own[due]
            fresh = full_gradients(self.anchors, self.x, self.labels, self.l2)
            self.anchor_full = fresh if self.anchor_full is None else [torch.where(_mask(due, g), f, g) for f, g in zip(fresh, self.anchor_full)]
        self.lam = torch.tensor([r.lam_at(epoch) for r in self.rules], dtype=torch.float64)

    def __call__(self, context: UpdateContext) -> None:
        epoch, within = divmod(context.batch.step, self.steps_per_epoch)
        if within == 0:
            self.begin_epoch(epoch, context.stack)
        context.optimizer.zero_grad(set_to_none=True)
        context.losses.sum().backward()  # grad CE_B(x_m); SGD adds mu x_m
        teacher = batch_gradients(self.anchors, context.inputs, context.batch.labels, self.l2)
        with torch.no_grad():
            for i, (p, g_teacher) in enumerate(zip(context.stack.parameters(), teacher)):
                shape = (-1,) + (1,) * (p.ndim - 1)
                control = g_teacher if self.anchor_full is None else g_teacher - self.full.view(shape).to(p) * self.anchor_full[i]
                p.grad -= self.lam.view(shape).to(p) * control
        context.optimizer.step()


def _mask(students: list[int], like: torch.Tensor) -> torch.Tensor:
    mask = torch.zeros(len(like), dtype=torch.bool)
    mask[students] = True
    return mask.view((-1,) + (1,) * (like.ndim - 1))


def per_example_gradients(model: nn.Module, x: torch.Tensor, y: torch.Tensor, l2: float) -> torch.Tensor:
    """(N, P): ``grad f_i(w) = grad CE(model_w(a_i), y_i) + l2 w`` for every example, flattened (torch.func); ``y``
    holds class ids (N,) or soft targets (N, K) (the KD loss at ``lam`` has the gradient of CE on ``(1 - lam) y + lam p_theta``)."""
    params = {name: p.detach() for name, p in model.named_parameters()}

    def loss(p, a, t):
        return F.cross_entropy(functional_call(model, p, (a[None],)), t[None]) + 0.5 * l2 * sum((v * v).sum() for v in p.values())

    return torch.cat([g.flatten(1) for g in vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y).values()], 1)


@dataclass(frozen=True)
class NoiseAtOptimum:
    """``sigma^2(lam) = a - 2 lam b + lam^2 c`` with a = E||g*||^2, b = E<g*, g_theta>, c = E||g_theta||^2;
    ``mean_cross = <grad F(x*), grad F(theta)>``, ``mean_teacher = ||grad F(theta)||^2`` (for :meth:`centered`)."""

    a: float
    b: float
    c: float
    mean_cross: float
    mean_teacher: float

    def sigma2(self, lam: float | torch.Tensor) -> float | torch.Tensor:
        return self.a - 2 * lam * self.b + lam * lam * self.c

    @property
    def lambda_star(self) -> float:
        if self.c <= 0:
            raise ValueError("lambda* is undefined: the teacher's per-example gradients are all zero")
        return self.b / self.c

    def centered(self) -> NoiseAtOptimum:
        """The noise of the distillation gradient + ``lam grad F(theta)`` (SVRG anchored at the teacher)."""
        return replace(self, b=self.b - self.mean_cross, c=self.c - self.mean_teacher, mean_cross=0.0, mean_teacher=0.0)

    @classmethod
    def from_gradients(cls, chunks: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> NoiseAtOptimum:
        """The moments from per-example gradients ``(g* (n, P), g_theta (n, P))``, given in chunks of rows."""
        n, a, b, c, sum_opt, sum_teacher = 0, 0.0, 0.0, 0.0, 0.0, 0.0
        for g_opt, g_teacher in chunks:
            n += len(g_opt)
            a, b, c = a + (g_opt * g_opt).sum(), b + (g_opt * g_teacher).sum(), c + (g_teacher * g_teacher).sum()
            sum_opt, sum_teacher = sum_opt + g_opt.sum(0), sum_teacher + g_teacher.sum(0)
        if n == 0:
            raise ValueError("no per-example gradients given")
        mean_opt, mean_teacher = sum_opt / n, sum_teacher / n
        return cls(float(a / n), float(b / n), float(c / n), float(mean_opt @ mean_teacher), float(mean_teacher @ mean_teacher))


def noise_at_optimum(optimum: nn.Module, teacher: nn.Module, x: torch.Tensor, y: torch.Tensor, l2: float, chunk: int = 1024) -> NoiseAtOptimum:
    """The exact :class:`NoiseAtOptimum` from every example's gradient at ``optimum`` and at ``teacher``."""
    return NoiseAtOptimum.from_gradients((per_example_gradients(optimum, x[s:s + chunk], y[s:s + chunk], l2),
                                          per_example_gradients(teacher, x[s:s + chunk], y[s:s + chunk], l2)) for s in range(0, len(x), chunk))


def kd_and_surrogate(student: nn.Module, teacher: nn.Module, x: torch.Tensor, y: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Flattened ``grad_x KD_B(x)`` (the standard loss, T = 1) and its surrogate ``grad CE_B(x) - lam grad CE_B(theta)``
    (theta: the teacher's own parameters; the official ``measure_grad_similarity_standard``). Equal for linear models."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lambda (the distillation weight) must be in [0, 1], got {lam}")
    own, theirs = list(student.parameters()), list(teacher.parameters())
    logits, teacher_logits = student(x), teacher(x)
    batch = Batch(torch.arange(len(x)), y, teacher_logits.detach(), {}, 0)
    kd = get_objective("kd", temperature=1.0, alpha=lam)(logits, batch).mean()
    g_kd = torch.autograd.grad(kd, own, retain_graph=True)
    g_ce = torch.autograd.grad(F.cross_entropy(logits, y), own)
    g_teacher = torch.autograd.grad(F.cross_entropy(teacher_logits, y), theirs)
    flat = lambda grads: torch.cat([g.flatten() for g in grads])  # noqa: E731
    return flat(g_kd), flat(g_ce) - lam * flat(g_teacher)

