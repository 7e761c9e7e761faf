"""The one training engine: M >= 1 students in one loop, each with its own objective, early stopping and best step.

``fit(model, objectives, train, config=..., seed=...)`` trains an ordinary ``(B, K)`` module (a stack of one) or a
:class:`~kdlib.models.stacked.StudentStack` of M students on the same batches. Per step:

1. a batch of training positions in a random order drawn from the run's own generator (seeded by ``seed``);
2. batch transforms (flip-crop, Mixup / CutMix), drawn from the same generator;
3. teacher outputs: precomputed (``train.teacher[idx]``) or computed on the transformed batch (``teacher_model``);
4. every student's per-example loss ``objective_m(outputs[m], batch)``, averaged over the batch, summed over students;
5. the update (the optimiser's step by default; a method may replace it, e.g. to differentiate through it).

Each student stops on its own: after ``config.patience`` evaluations without a better validation accuracy it is
restored to its best step and frozen (it stops changing), and nothing it does depends on the other students of
its stack (its gradients come from its own loss; batch order, transforms and initial weights only from the seed).
The device is CUDA when present, else the CPU; nothing else changes.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal, Mapping, Protocol, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from kdlib.models.stacked import Inputs, StudentStack, as_stack, rows


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe.

    Attributes:
        epochs: maximum passes over the training data.
        batch_size: examples per step.
        lr: learning rate; decayed to zero by a cosine schedule over all planned steps when ``cosine`` is set.
        weight_decay: decoupled weight decay (AdamW) or L2 penalty (SGD).
        patience: a student stops after this many evaluations without a better validation accuracy (None: never).
        evals_per_epoch: validation checks per epoch.
        epochs_per_eval: validate only in every ``epochs_per_eval``-th epoch (for tiny training sets, where a validation
            pass costs more than an epoch); patience counts validations.
        cosine: cosine learning-rate decay (else constant).
        optimizer: ``"adamw"`` (fused kernel) or ``"sgd"`` (plain, with optional momentum).
        momentum: SGD momentum.
        max_steps: stop after this many updates (None: after ``epochs``); the schedule spans the planned steps.
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int | None = 5
    evals_per_epoch: int = 1
    epochs_per_eval: int = 1
    cosine: bool = False
    optimizer: Literal["adamw", "sgd"] = "adamw"
    momentum: float = 0.0
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0 or self.evals_per_epoch < 1 or self.epochs_per_eval < 1:
            raise ValueError(f"invalid training config {self}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")
        if self.optimizer not in ("adamw", "sgd") or not 0 <= self.momentum < 1:
            raise ValueError(f"optimizer must be 'adamw' or 'sgd' (momentum in [0, 1)), got {self.optimizer!r}, momentum={self.momentum}")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"max_steps must be >= 1 or None, got {self.max_steps}")

    def steps_per_epoch(self, n: int) -> int:
        return max(1, math.ceil(n / self.batch_size))

    def planned_steps(self, n: int) -> int:
        """Updates a run on ``n`` examples makes unless every student stops early."""
        steps = self.steps_per_epoch(n) * self.epochs
        return steps if self.max_steps is None else min(steps, self.max_steps)


@dataclass
class Batch:
    """What an objective sees of one training batch.

    Attributes:
        index: (B,) positions of the examples in the training set (for per-example data an objective holds).
        labels: (B,) class ids (-1: unlabelled) or (B, C) soft labels (after Mixup / CutMix).
        teacher: (B, C) teacher logits on this (transformed) batch, or None.
        fields: named per-example tensors of the training set, rows ``index``.
        step: the number of updates done before this batch.
    """

    index: torch.Tensor
    labels: torch.Tensor
    teacher: torch.Tensor | None
    fields: Mapping[str, torch.Tensor]
    step: int


class Objective(Protocol):
    """``objective(outputs (B, K), batch) -> (B,)`` per-example losses; the engine minimises their batch mean."""

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor: ...


class StudentInputs(Protocol):
    """Training or evaluation inputs: ``len`` examples, ``take(idx)`` the model's input for them, ``pick`` their
    outputs. Rows of a tensor or a CSR matrix are wrapped by :class:`RowInputs`; a graph's nodes by the graph module."""

    def __len__(self) -> int: ...
    def take(self, idx: torch.Tensor) -> Any: ...
    def pick(self, outputs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class RowInputs:
    """Examples that are rows of a tensor (N, ...) or of a scipy CSR matrix (a sparse batch for a sparse matmul)."""

    x: Inputs

    def __len__(self) -> int:
        return self.x.shape[0]

    def take(self, idx: torch.Tensor):
        return rows(self.x, idx)

    def pick(self, outputs: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return outputs


def as_inputs(x) -> StudentInputs:
    """``x`` if it already follows :class:`StudentInputs`, else its rows."""
    return x if hasattr(x, "take") and hasattr(x, "pick") else RowInputs(x)


@dataclass
class TrainSet:
    """The training examples: inputs, labels (-1 = unlabelled), optional precomputed teacher logits and fields."""

    inputs: Any
    labels: torch.Tensor
    teacher: torch.Tensor | None = None
    fields: Mapping[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.inputs = as_inputs(self.inputs)
        n = len(self.inputs)
        if n == 0:
            raise ValueError("cannot train on an empty training set")
        for name, tensor in {"labels": self.labels, "teacher": self.teacher, **self.fields}.items():
            if tensor is not None and len(tensor) != n:
                raise ValueError(f"{name} must align with the {n} training inputs, got length {len(tensor)}")


EvalSet = tuple[Any, torch.Tensor]  # (inputs, labels)


@dataclass
class History:
    """What happened to every student during :func:`fit` (arrays have one entry per student)."""

    best_val_accuracy: np.ndarray
    best_step: np.ndarray
    stopped_step: np.ndarray  # the step at which a student ran out of patience (-1: it never did)
    steps: int = 0
    seconds: float = 0.0
    val_curve: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (step, validation accuracy per student)
    train_loss: list[tuple[int, np.ndarray]] = field(default_factory=list)  # (step, mean loss since the last evaluation)
    curves: list[dict] = field(default_factory=list)  # {"step", "seconds", "set", "accuracy": (M,)} at the requested steps

    @property
    def stopped_early(self) -> bool:
        return bool((self.stopped_step >= 0).all())


@dataclass
class StepState:
    """What an ``on_step`` hook sees after an update."""

    step: int
    epoch: int
    stack: StudentStack
    batch: Batch
    losses: torch.Tensor  # (M,), detached


@dataclass
class UpdateContext:
    """What an update receives: the batch's losses with their graph, the optimiser, and what produced them."""

    stack: StudentStack
    inputs: Any
    batch: Batch
    losses: torch.Tensor  # (M,) with the autograd graph
    optimizer: torch.optim.Optimizer
    objectives: Sequence[Objective]


def default_update(context: UpdateContext) -> None:
    """One gradient step of the optimiser on the sum of the students' losses."""
    context.optimizer.zero_grad(set_to_none=True)
    context.losses.sum().backward()
    context.optimizer.step()


BatchTransform = Callable[[torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def set_seed(seed: int) -> None:
    """Seed Python's and torch's global generators (model initialisation, dropout)."""
    random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block on ``threads`` torch threads (restored afterwards). Small models (linear students, full-graph
    GNNs, proxy CNNs) run faster on one: their kernels are too small to split, and on a shared 2-core machine two
    threads stall on every kernel (a (10, 10) log-softmax took 8 ms instead of 5 us, measured here)."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_device() -> torch.device:
    """CUDA when present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def place(model: nn.Module, device: torch.device | str) -> nn.Module:
    """Move ``model`` to ``device`` in place, its 4-D weights in the layout its batches are converted to
    (``model.memory_format``). Converting the batches alone is not enough: a one-channel image batch is contiguous in
    both layouts, so with NCHW weights the first convolution, and every layer after it, runs NCHW (the slow path on
    CPU: benchmarks/training_step.py times both)."""
    memory_format = getattr(model, "memory_format", None)
    return model.to(device, memory_format=memory_format) if memory_format is not None else model.to(device)


def _to(value, device: torch.device, memory_format: torch.memory_format | None = None):
    if not isinstance(value, torch.Tensor):
        return value.to(device) if hasattr(value, "to") else value
    value = value.to(device, non_blocking=True)
    return value.contiguous(memory_format=memory_format) if memory_format is not None and value.ndim == 4 else value


@torch.no_grad()
def predict_outputs(model: nn.Module, x, batch_size: int = 1024) -> torch.Tensor:
    """Raw outputs in eval mode, batched: (N, K) for an ordinary module, (M, N, K) for a stack."""
    stack = as_stack(model)
    inputs = as_inputs(x)
    device = next(stack.parameters()).device
    place(stack, device)
    was_training = stack.training
    stack.eval()
    n = len(inputs)
    parts = []
    for start in range(0, n, batch_size):
        idx = torch.arange(start, min(start + batch_size, n))
        parts.append(inputs.pick(stack(_to(inputs.take(idx), device, stack.memory_format)), idx).cpu())
    stack.train(was_training)
    outputs = torch.cat(parts, 1) if parts else torch.empty(stack.num_students, 0)
    return outputs if isinstance(model, StudentStack) else outputs[0]


def accuracy(model: nn.Module, x, y: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """Accuracy of every student of ``model`` (a stack, or an ordinary module as a stack of one): (M,)."""
    stack = as_stack(model)
    if len(as_inputs(x)) != len(y):
        raise ValueError(f"{len(as_inputs(x))} inputs but {len(y)} labels")
    if len(y) == 0:
        raise ValueError("cannot evaluate on an empty set")
    scores = stack.class_scores(predict_outputs(stack, x, batch_size))
    return (scores.argmax(-1) == torch.as_tensor(y)[None]).double().mean(1).numpy()


def evaluate(model: nn.Module, x, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Accuracy of an ordinary module (or of the single student of a stack of one)."""
    result = accuracy(model, x, y, batch_size)
    if len(result) != 1:
        raise ValueError(f"evaluate() is for one model; this stack has {len(result)} students (use accuracy())")
    return float(result[0])


def make_optimizer(parameters, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """The optimiser of ``config``: fused AdamW (much faster for stacked tensors) or plain SGD."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(parameters, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay, fused=True)


def eval_points(config: TrainConfig, n: int) -> set[int]:
    """The steps within an epoch (1-based) after which the students are validated."""
    per_epoch = config.steps_per_epoch(n)
    return {int(round(per_epoch * (k + 1) / config.evals_per_epoch)) for k in range(config.evals_per_epoch)}


def epoch_batches(n: int, batch_size: int, generator: torch.Generator):
    """One epoch: ``(step_in_epoch, indices)`` over a fresh random order of ``n`` examples."""
    order = torch.randperm(n, generator=generator)
    for step_in_epoch, start in enumerate(range(0, n, batch_size)):
        yield step_in_epoch, order[start : start + batch_size]


class _Checkpoints:
    """Per-student snapshots of every parameter and buffer: copy rows in, restore rows out."""

    def __init__(self, stack: StudentStack) -> None:
        self.views = dict(stack.student_views())
        self.best = {name: view.clone() for name, view in self.views.items()}

    @torch.no_grad()
    def save(self, which: torch.Tensor) -> None:
        for name, view in self.views.items():
            self.best[name][which] = view[which]

    @torch.no_grad()
    def restore(self, which: torch.Tensor) -> None:
        for name, view in self.views.items():
            view[which] = self.best[name][which]


def fit(
    model: nn.Module,
    objectives: Objective | Sequence[Objective],
    train: TrainSet,
    *,
    config: TrainConfig,
    seed: int,
    val: EvalSet | None = None,
    teacher_model: nn.Module | None = None,
    transforms: Sequence[BatchTransform] = (),
    update: Callable[[UpdateContext], None] = default_update,
    on_step: Callable[[StepState], None] | None = None,
    on_eval: Callable[[int, np.ndarray], None] | None = None,
    curve_steps: Sequence[int] = (),
    curve_sets: Mapping[str, EvalSet] | None = None,
    device: torch.device | str | None = None,
    desc: str = "train",
    progress: bool = True,
) -> History:
    """Train every student of ``model`` in place; see the module docstring.

    Args:
        model: a :class:`~kdlib.models.stacked.StudentStack`, or an ordinary module ``(B, K)`` (one student).
        objectives: one objective per student (a single one is used by every student).
        train: training inputs, labels, optional teacher logits and per-example fields.
        config: the optimisation recipe.
        seed: seeds batch order and transforms (its own generator) and torch's global generator (dropout).
        val: ``(inputs, labels)`` for per-student early stopping and best-step selection (without it every
            student trains for ``config.epochs`` and keeps its last weights).
        teacher_model: computes the teacher's logits on every transformed batch (else ``train.teacher`` is used).
        transforms: batch transforms ``t(x, labels, generator) -> (x, labels)`` applied in order.
        update: the update step (default: the optimiser on the summed losses).
        on_step, on_eval: hooks called after every update / every validation (``on_eval(step, accuracy)``).
        curve_steps, curve_sets: evaluate every student on each named ``(inputs, labels)`` after these steps.
        device: where to train (default: CUDA when present, else the CPU).

    Returns:
        The :class:`History` of every student; the students end at their best (or last) step, in eval mode.

    Raises:
        ValueError: mismatched objectives, an empty training set, or objectives returning the wrong shape.
    """
    stack = as_stack(model)
    m = stack.num_students
    objectives = list(objectives) if isinstance(objectives, (list, tuple)) else [objectives] * m
    if len(objectives) != m:
        raise ValueError(f"need one objective per student: {m} students, {len(objectives)} objectives")
    device = torch.device(device) if device is not None else default_device()
    place(stack, device)
    if teacher_model is not None:
        place(teacher_model, device).eval()
    set_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    n = len(train.inputs)
    planned = config.planned_steps(n)
    optimizer = make_optimizer(stack.parameters(), config, device)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, planned) if config.cosine else None
    checks = eval_points(config, n) if val is not None else set()
    curves = set(curve_steps)
    patience = config.patience if config.patience is not None else math.inf
    history = History(np.full(m, -np.inf), np.zeros(m, dtype=int), np.full(m, -1, dtype=int))
    checkpoints = _Checkpoints(stack) if val is not None else None
    active = np.ones(m, dtype=bool)
    since_best = np.zeros(m, dtype=int)
    frozen = torch.zeros(m, dtype=torch.bool)
    running, running_steps = torch.zeros(m, device=device), 0
    labels_all, teacher_all = train.labels, train.teacher
    start = time.perf_counter()
    stack.train()
    bar = tqdm(total=planned, desc=desc, disable=not progress, leave=False)
    for epoch in range(config.epochs):
        for step_in_epoch, idx in epoch_batches(n, config.batch_size, generator):
            x, labels = train.inputs.take(idx), labels_all[idx]
            for transform in transforms:
                x, labels = transform(x, labels, generator)
            x = _to(x, device, stack.memory_format)
            if teacher_model is not None:
                with torch.no_grad():
                    teacher = teacher_model(x)
            else:
                teacher = None if teacher_all is None else _to(teacher_all[idx], device)
            batch = Batch(idx, _to(labels, device), teacher, {k: _to(v[idx], device) for k, v in train.fields.items()}, history.steps)
            outputs = train.inputs.pick(stack(x), idx)
            losses = torch.stack([_batch_loss(objective, outputs[s], batch) for s, objective in enumerate(objectives)])
            update(UpdateContext(stack, x, batch, losses, optimizer, objectives))
            if scheduler is not None:
                scheduler.step()
            if frozen.any():
                checkpoints.restore(frozen)
            history.steps += 1
            running += losses.detach()
            running_steps += 1
            bar.update()
            if on_step is not None:
                on_step(StepState(history.steps, epoch, stack, batch, losses.detach()))
            if step_in_epoch + 1 in checks and (epoch + 1) % config.epochs_per_eval == 0:
                history.train_loss.append((history.steps, (running / running_steps).cpu().numpy()))
                running, running_steps = torch.zeros(m, device=device), 0
                scores = accuracy(stack, *val)
                stack.train()
                history.val_curve.append((history.steps, scores))
                improved = active & (scores > history.best_val_accuracy)
                history.best_val_accuracy[improved] = scores[improved]
                history.best_step[improved] = history.steps
                since_best = np.where(improved, 0, since_best + active)
                checkpoints.save(torch.from_numpy(improved))
                stopping = active & (since_best >= patience)
                if stopping.any():
                    history.stopped_step[stopping] = history.steps
                    active &= ~stopping
                    frozen = torch.from_numpy(~active)
                    checkpoints.restore(frozen)
                if on_eval is not None:
                    on_eval(history.steps, scores)
                bar.set_postfix(active=int(active.sum()), best=f"{history.best_val_accuracy.mean():.4f}")
            if history.steps in curves:
                if checkpoints is not None and frozen.any():
                    checkpoints.restore(frozen)
                for name, (inputs, y) in (curve_sets or {}).items():
                    history.curves.append({"step": history.steps, "seconds": time.perf_counter() - start, "set": name, "accuracy": accuracy(stack, inputs, y)})
                stack.train()
            if not active.any() or history.steps >= planned:
                break
        if not active.any() or history.steps >= planned:
            break
    bar.close()
    if checkpoints is not None:
        checkpoints.restore(torch.ones(m, dtype=torch.bool))
    else:
        history.best_step[:] = history.steps
    if running_steps:
        history.train_loss.append((history.steps, (running / running_steps).cpu().numpy()))
    stack.eval()
    history.seconds = time.perf_counter() - start
    return history


def _batch_loss(objective: Objective, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
    losses = objective(outputs, batch)
    if losses.shape != outputs.shape[:1]:
        raise ValueError(f"an objective must return one loss per example ({outputs.shape[0]},), got shape {tuple(losses.shape)}")
    return losses.mean()
