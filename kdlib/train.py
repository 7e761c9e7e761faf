"""The one training loop: seeded, progress bar, early stopping on a validation split, returns a history."""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

Predict = Callable[[torch.Tensor], torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation recipe (Adam with decoupled weight decay).

    Attributes:
        epochs: maximum passes over the training data.
        batch_size: examples per step.
        lr: learning rate; decayed by a cosine schedule over ``epochs`` when ``cosine`` is set.
        weight_decay: AdamW weight decay.
        patience: stop after this many evaluations without a better validation accuracy (None: never stop early).
        evals_per_epoch: validation checks per epoch (more for short runs on small data).
        cosine: cosine learning-rate decay to zero over the planned steps.
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int | None = 5
    evals_per_epoch: int = 1
    cosine: bool = False

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0 or self.weight_decay < 0 or self.evals_per_epoch < 1:
            raise ValueError(f"invalid training config {self}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {self.patience}")


@dataclass
class History:
    """What happened during :func:`fit`."""

    train_loss: list[float] = field(default_factory=list)  # mean loss between evaluations
    val_accuracy: list[float] = field(default_factory=list)
    best_step: int = 0
    best_val_accuracy: float = float("nan")
    steps: int = 0
    seconds: float = 0.0
    stopped_early: bool = False


def set_seed(seed: int) -> None:
    """Seed Python's and torch's global generators (model initialisation, dropout)."""
    random.seed(seed)
    torch.manual_seed(seed)


@torch.no_grad()
def predict_outputs(model: nn.Module, x: torch.Tensor, batch_size: int = 1024, dim: int = 0) -> torch.Tensor:
    """The model's raw outputs on ``x`` in eval mode, batched (batches joined along ``dim``: 1 for stacked students'
    (M, N, C) outputs)."""
    was_training = model.training
    model.eval()
    outputs = torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)], dim) if len(x) else torch.empty(0)
    model.train(was_training)
    return outputs


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, predict: Predict | None = None, batch_size: int = 1024) -> float:
    """Accuracy of ``argmax(predict(model(x)))`` against ``y``."""
    if len(x) != len(y):
        raise ValueError(f"{len(x)} inputs but {len(y)} labels")
    if len(y) == 0:
        raise ValueError("cannot evaluate on an empty set")
    scores = predict_outputs(model, x, batch_size)
    scores = predict(scores) if predict else scores
    return (scores.argmax(1) == torch.as_tensor(y)).float().mean().item()


def optimisation(parameters, config: TrainConfig, n: int, fused: bool = False):
    """AdamW, the optional cosine schedule over all planned steps, and the steps (counted within an
    epoch) after which to validate. ``fused`` selects AdamW's fused kernel (much faster for large stacked tensors)."""
    optimizer = torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay, **({"fused": True} if fused else {}))
    steps_per_epoch = max(1, -(-n // config.batch_size))
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps_per_epoch * config.epochs) if config.cosine else None
    eval_points = {int(round(steps_per_epoch * (k + 1) / config.evals_per_epoch)) for k in range(config.evals_per_epoch)}
    return optimizer, scheduler, eval_points


def epoch_batches(n: int, batch_size: int, generator: torch.Generator):
    """One epoch: ``(step_in_epoch, indices)`` over a fresh random order of ``n`` examples."""
    order = torch.randperm(n, generator=generator)
    for step_in_epoch, start in enumerate(range(0, n, batch_size)):
        yield step_in_epoch, order[start : start + batch_size]


def optimizer_step(optimizer: torch.optim.Optimizer, scheduler, loss: torch.Tensor) -> None:
    """One gradient step (and one schedule step)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if scheduler is not None:
        scheduler.step()


def fit(
    model: nn.Module,
    loss_fn: Callable[..., torch.Tensor],
    x: torch.Tensor,
    targets: Sequence[torch.Tensor],
    *,
    config: TrainConfig,
    seed: int,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    predict: Predict | None = None,
    augment: Augment | None = None,
    desc: str = "train",
    progress: bool = True,
) -> History:
    """Train ``model`` in place on ``loss_fn(model(x_batch), *target_batches)``.

    With ``val``, the model is evaluated ``config.evals_per_epoch`` times per epoch, training stops after
    ``config.patience`` evaluations without improvement, and the best weights are restored.
    Deterministic on CPU for a given ``seed`` (batch order and augmentation use their own generator).

    Args:
        model: the network to train.
        loss_fn: called as ``loss_fn(outputs, *targets_for_batch)``; e.g. an objective from ``kdlib.distill``.
        x: inputs (N, ...).
        targets: tensors aligned with ``x`` (labels, teacher logits, ...).
        config: the optimisation recipe.
        seed: seeds batch order, augmentation and dropout.
        val: ``(x_val, y_val)`` for early stopping and model selection.
        predict: maps outputs to class scores for validation (default: identity).
        augment: ``augment(x_batch, generator)`` applied to each training batch.
    """
    n = len(x)
    if n == 0:
        raise ValueError("cannot train on an empty training set")
    for t in targets:
        if len(t) != n:
            raise ValueError(f"targets must align with the {n} inputs, got a tensor of length {len(t)}")
    set_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer, scheduler, eval_points = optimisation(model.parameters(), config, n)

    history = History()
    best_state, since_best, running = None, 0, []
    start = time.perf_counter()
    model.train()
    bar = tqdm(range(config.epochs), desc=desc, disable=not progress, leave=False)
    for _epoch in bar:
        for step_in_epoch, idx in epoch_batches(n, config.batch_size, generator):
            xb = x[idx]
            if augment is not None:
                xb = augment(xb, generator)
            loss = loss_fn(model(xb), *(t[idx] for t in targets))
            optimizer_step(optimizer, scheduler, loss)
            history.steps += 1
            running.append(loss.item())
            if val is not None and step_in_epoch + 1 in eval_points:
                accuracy = evaluate(model, *val, predict=predict)
                history.train_loss.append(float(np.mean(running)))
                history.val_accuracy.append(accuracy)
                running = []
                if not accuracy <= history.best_val_accuracy:  # also true for the first (nan) comparison
                    history.best_val_accuracy, history.best_step, since_best = accuracy, history.steps, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    since_best += 1
                bar.set_postfix(val_acc=f"{accuracy:.4f}", best=f"{history.best_val_accuracy:.4f}")
                if config.patience is not None and since_best >= config.patience:
                    history.stopped_early = True
                    break
        if history.stopped_early:
            break
    if val is None:
        history.train_loss.append(float(np.mean(running)) if running else float("nan"))
        history.best_step = history.steps
    elif best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    history.seconds = time.perf_counter() - start
    return history
