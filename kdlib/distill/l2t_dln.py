"""L2T-DLN (Hai et al., *Learning to Teach with Dynamic Loss Network*, NeurIPS 2023; the authors' main.py / DLN_LSTM.py).

A student w trains on a dynamic loss network (DLN) L_phi (:class:`~kdlib.models.loss_network.LossNetwork`); a teacher
moves phi from the state of the loss (its validation gradient). One teaching step on K training batches and a
validation batch (x_v, y_v), alpha the student's SGD rate::

    unroll     w_K(phi) = w_0 - alpha sum_k grad_w L_phi(f_{w_k}(x_k), y_k)                (K SGD steps from w_0)
    state      g = d CE(f_{w_K(phi)}(x_v), y_v) / d phi                             (through the probe unroll)
    teacher    (u, h, c) = LSTM_theta(pre(g), h, c),  phi' = phi - beta u           (coordinate-wise, Andrychowicz 2016)
               pre(g) = [log|g| / p, sign g] if |g| >= e^-p else [-1, e^p g],  p = 10
    meta       theta <- Adam(theta, d CE(f_{w_K(phi')}(x_v), y_v) / d theta)        (through phi' and the second unroll)
    advance    w_0 <- w_K(phi'),  phi <- phi',  (h, c) <- detach(h, c)   (memory reset: (h, c) <- 0)
    direct     (no teacher, no memory; L2T-DLF-like) phi' = Adam(phi, g), w_0 <- w_K(phi')

:class:`TeachingUpdate` is the engine's ``update=`` hook: it collects K batches of the engine's data order (the
student holds still in between), then runs one teaching step with the unrolls through ``torch.func.functional_call``.
BatchNorm statistics follow the student's real trajectory (the probe and meta passes run on copies).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from kdlib.distill.registry import register_objective
from kdlib.models.loss_network import LossNetwork
from kdlib.train import Batch, UpdateContext

Params = dict[str, torch.Tensor]


@register_objective("loss_network")
class LossNetworkLoss:
    """A (fixed or taught) DLN as an objective: per-example DLN loss; unlabelled examples (-1) contribute 0."""

    def __init__(self, network: LossNetwork) -> None:
        self.network = network

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        if batch.labels.ndim != 1:
            raise ValueError(f"the loss network needs class ids (B,), got labels of shape {tuple(batch.labels.shape)}")
        labelled = batch.labels >= 0
        return self.network(outputs, batch.labels.clamp_min(0)) * labelled


def preprocess(g: torch.Tensor, p: float = 10.0) -> torch.Tensor:
    """Andrychowicz et al.'s gradient preprocessing, (n,) -> (n, 2)."""
    keep = g.abs() >= math.exp(-p)
    log_part = torch.where(keep, torch.log(g.abs() + 1e-8) / p, torch.full_like(g, -1.0))
    return torch.stack([log_part, torch.where(keep, torch.sign(g), math.exp(p) * g)], 1)


class CoordinateLSTM(nn.Module):
    """Stacked LSTM cells 2 -> hidden... -> 1 shared by every coordinate; the last hidden state (in (-1, 1)) is the update."""

    def __init__(self, hidden: tuple[int, ...] = (64, 64, 64), p: float = 10.0) -> None:
        super().__init__()
        if not hidden or min(hidden) < 1 or p <= 0:
            raise ValueError(f"invalid teacher: hidden={hidden}, p={p}")
        sizes = (2, *hidden, 1)
        self.cells, self.p = nn.ModuleList(nn.LSTMCell(a, b) for a, b in zip(sizes[:-1], sizes[1:])), p

    def initial_state(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.zeros(n, c.hidden_size), torch.zeros(n, c.hidden_size)) for c in self.cells]

    def forward(self, g: torch.Tensor, state: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, list]:
        x, new = preprocess(g, self.p), []
        for cell, hc in zip(self.cells, state):
            new.append(cell(x, hc))
            x = new[-1][0]
        return x[:, 0], new


def sgd_unroll(model: nn.Module, params: Params, buffers: Params, batches, loss, create_graph: bool) -> Params:
    """SGD steps of ``loss(logits, labels)`` (per-example) on ``batches`` of (x, y, rate), functionally; differentiable
    (through every step) if ``create_graph``."""
    for x, y, lr in batches:
        grads = torch.autograd.grad(loss(functional_call(model, (params, buffers), (x,)), y).mean(), list(params.values()), create_graph=create_graph)
        params = {k: p - lr * g if create_graph else (p - lr * g).detach().requires_grad_() for (k, p), g in zip(params.items(), grads)}
    return params


class TeachingUpdate:
    """``fit(..., update=TeachingUpdate(...))``: L2T-DLN (``teacher="lstm"``), its memory-reset ablation
    (``"lstm_reset"``) or the direct meta-gradient (``"direct"``); ``step_scale`` is beta (the LSTM) or Adam's rate on
    phi (direct). The student's rate is the engine's SGD rate (plain SGD required). Each teaching step appends to
    ``log`` the probe's and the meta pass's validation loss, ``|g|`` and ``|phi' - phi|``.

    Raises:
        ValueError: an unknown teacher, a non-positive scale / unroll / batch, an empty validation set; during
            training, another student or an optimiser other than plain SGD.
    """

    TEACHERS = ("lstm", "lstm_reset", "direct")

    def __init__(self, student: nn.Module, network: LossNetwork, val: tuple[torch.Tensor, torch.Tensor], *, teacher: str, step_scale: float,
                 unroll: int, val_batch: int, seed: int, hidden: tuple[int, ...] = (64, 64, 64), teacher_lr: float = 1e-3) -> None:
        if teacher not in self.TEACHERS:
            raise ValueError(f"teacher must be one of {self.TEACHERS}, got {teacher!r}")
        if step_scale <= 0 or unroll < 1 or val_batch < 1:
            raise ValueError(f"need step_scale > 0, unroll >= 1 and val_batch >= 1, got {step_scale}, {unroll}, {val_batch}")
        if len(val[0]) != len(val[1]) or not len(val[1]):
            raise ValueError(f"the validation set must be non-empty with one label per input, got {len(val[0])} inputs, {len(val[1])} labels")
        self.student, self.network, self.val, self.teacher, self.beta = student, network, val, teacher, step_scale
        self.unroll, self.val_batch, self.window, self.log = unroll, val_batch, [], []
        self.generator = torch.Generator().manual_seed(seed)
        self.buffers = {k: b.clone() for k, b in student.named_buffers()}
        with torch.random.fork_rng():
            torch.manual_seed(seed)  # the LSTM's initial weights
            self.lstm = CoordinateLSTM(hidden)
        self.state = self.lstm.initial_state(sum(p.numel() for p in network.parameters()))
        learner = (network.parameters(), step_scale) if teacher == "direct" else (self.lstm.parameters(), teacher_lr)
        self.optimizer = torch.optim.Adam(learner[0], lr=learner[1])

    def _copies(self) -> Params:
        return {k: b.clone() for k, b in self.buffers.items()}

    def _val_ce(self, params: Params, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(self.student, (params, self._copies()), (x,)), y)

    def _loss(self, phi: Params):
        return lambda logits, labels: functional_call(self.network, phi, (logits, labels))

    def __call__(self, context: UpdateContext) -> None:
        group = context.optimizer.param_groups[0]
        if context.stack.student(0) is not self.student:
            raise ValueError("the teaching update trains its own student: give fit the module it was built with")
        if not isinstance(context.optimizer, torch.optim.SGD) or group["momentum"] or group["weight_decay"]:
            raise ValueError("the teaching update needs plain SGD (optimizer='sgd', momentum 0, weight_decay 0)")
        with torch.no_grad():  # the engine's forward moved the BatchNorm statistics; they follow the unrolls instead
            for k, b in self.student.named_buffers():
                b.copy_(self.buffers[k])
        self.window.append((context.inputs, context.batch.labels, group["lr"]))
        if len(self.window) < self.unroll:
            return
        batches, self.window = self.window, []
        pick = torch.randint(len(self.val[1]), (self.val_batch,), generator=self.generator)
        x_v, y_v = self.val[0][pick], self.val[1][pick]
        w0 = {k: p.detach().requires_grad_() for k, p in self.student.named_parameters()}
        phi = dict(self.network.named_parameters())
        probe = sgd_unroll(self.student, w0, self._copies(), batches, self._loss(phi), create_graph=True)
        probe_loss = self._val_ce(probe, x_v, y_v)
        grads = torch.autograd.grad(probe_loss, list(phi.values()))
        g, before = torch.cat([x.flatten() for x in grads]), torch.cat([p.detach().flatten() for p in phi.values()])
        if self.teacher == "direct":
            for p, x in zip(phi.values(), grads):
                p.grad = x
            self.optimizer.step()
            new_phi, meta_loss = {k: p.detach() for k, p in phi.items()}, float("nan")
        else:
            if self.teacher == "lstm_reset":
                self.state = self.lstm.initial_state(len(g))
            u, state = self.lstm(g, self.state)
            sizes = [p.numel() for p in phi.values()]
            new_phi = {k: p.detach() - self.beta * du.view_as(p) for (k, p), du in zip(phi.items(), u.split(sizes))}
        live = {k: b for k, b in self.student.named_buffers()}  # the real statistics follow w_K(phi')
        final = sgd_unroll(self.student, w0, live, batches, self._loss(new_phi), create_graph=self.teacher != "direct")
        if self.teacher != "direct":
            meta = self._val_ce(final, x_v, y_v)
            self.optimizer.zero_grad(set_to_none=True)
            meta.backward()
            self.optimizer.step()
            self.state, meta_loss = [(h.detach(), c.detach()) for h, c in state], meta.item()
        with torch.no_grad():
            for k, p in self.student.named_parameters():
                p.copy_(final[k])
            for k, p in self.network.named_parameters():
                p.copy_(new_phi[k])
            self.buffers = {k: b.clone() for k, b in self.student.named_buffers()}
        step = (torch.cat([p.detach().flatten() for p in self.network.parameters()]) - before).norm()
        self.log.append({"step": context.batch.step + 1, "probe_val_loss": probe_loss.item(), "meta_val_loss": meta_loss,
                         "state_norm": float(g.norm()), "update_norm": float(step)})
