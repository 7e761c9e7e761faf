"""M students trained side by side as one network: one ``(M, B, K)`` contract for every kind of student.

A *stack* holds M students of one architecture. ``forward(x)`` returns every student's outputs on the same batch,
``(M, B, K)``; ``.student(i)`` returns student i as a standalone module whose ``forward(x)`` is ``(B, K)``; and
``student_views()`` exposes every parameter and buffer as an ``(M, ...)`` view, so that the training engine can
snapshot, restore and freeze one student without touching the others. Students never mix: each parameter belongs to
one student, so student m's gradient comes from student m's loss alone.

* :class:`StackedMLP` -- one-hidden-layer ReLU MLPs; the first layer of all students is one (D, M*H) matrix (one
  large matrix product instead of M small ones; sparse CSR inputs supported). Optional subclass heads: student m
  uses the first ``S_m`` of ``S_max`` slots per class, ``K = C * S_max``, unused slots masked.
* :class:`StackedCNN` -- :class:`~kdlib.models.vision.SmallCNN` students as grouped convolutions (student m owns
  channel block m of every layer; BatchNorm is per channel, so per student).
* :class:`SingleStudent` -- any ordinary ``(B, K)`` module as a stack of one.

Initial weights depend only on the seed (``shared_init``: every student starts from the same weights, a paired
design in which methods differ only in their objectives).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator

import numpy as np
import scipy.sparse
import torch
from torch import nn

from kdlib.models.mlp import MLP
from kdlib.models.vision import CNNConfig, SmallCNN

MASKED_LOGIT = -1e9
Inputs = torch.Tensor | scipy.sparse.csr_matrix


def rows(x: Inputs, idx: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Rows ``idx`` of a dense tensor, or of a scipy CSR matrix as a sparse COO tensor (for a sparse matmul)."""
    if isinstance(x, torch.Tensor):
        return x[idx]
    block = x[np.asarray(idx)].tocoo()
    indices = torch.from_numpy(np.vstack([block.row, block.col]).astype(np.int64))
    return torch.sparse_coo_tensor(indices, torch.from_numpy(block.data).float(), block.shape, check_invariants=False).coalesce()


def _student_axis(tensor: torch.Tensor, count: int, dim: int) -> torch.Tensor:
    """A view of ``tensor`` with the students on axis 0, when axis ``dim`` holds M contiguous blocks."""
    return tensor.unflatten(dim, (count, -1)).movedim(dim, 0)


class StudentStack(nn.Module):
    """Base class of stacks: ``num_students``, ``forward -> (M, B, K)``, ``student(i)``, ``student_views()``.

    Subclasses list, in ``_blocked``, the parameters / buffers whose axis ``dim`` holds M contiguous per-student
    blocks; every other tensor has the students on axis 0, except those in ``_shared`` (read-only bookkeeping).
    """

    num_students: int
    num_classes: int
    _blocked: dict[str, int] = {}
    _shared: tuple[str, ...] = ()
    memory_format: torch.memory_format | None = None  # the layout batches are converted to (None: left as they are)

    def student_views(self) -> Iterator[tuple[str, torch.Tensor]]:
        """Every parameter and buffer as an ``(M, ...)`` view (writes go to the stack's storage)."""
        for name, tensor in [*self.named_parameters(), *self.named_buffers()]:
            if name.rsplit(".", 1)[-1] in self._shared or name in self._shared:
                continue
            dim = self._blocked.get(name)
            yield name, (tensor.data if dim is None else _student_axis(tensor.data, self.num_students, dim))

    def class_scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """Class scores (..., C) from the outputs (..., K): the outputs themselves unless the head has subclass slots."""
        return outputs

    def student(self, index: int) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.num_students:
            raise IndexError(f"student index {index} out of range for a stack of {self.num_students}")


class SingleStudent(StudentStack):
    """An ordinary module with ``forward(x) -> (B, K)`` as a stack of one (``(1, B, K)``)."""

    def __init__(self, model: nn.Module, num_classes: int | None = None) -> None:
        super().__init__()
        self.model = model
        self.num_students = 1
        self.num_classes = num_classes if num_classes is not None else getattr(getattr(model, "head", None), "out_features", 0)
        self.memory_format = getattr(model, "memory_format", None)

    def forward(self, x):
        return self.model(x)[None]

    def student_views(self):
        for name, tensor in [*self.named_parameters(), *self.named_buffers()]:
            if not name.endswith("num_batches_tracked"):
                yield name, tensor.data[None]

    def student(self, index: int) -> nn.Module:
        self._check_index(index)
        return self.model


class _SlotHead:
    """Subclass slots of a C-class head: student m uses the first ``S_m`` of ``S_max`` slots per class."""

    def _init_slots(self, num_classes: int, subclasses: list[int] | tuple[int, ...]) -> None:
        if not subclasses or min(subclasses) < 1:
            raise ValueError(f"every student needs at least one slot per class, got subclasses={list(subclasses)}")
        self.subclasses, self.max_subclasses = tuple(subclasses), max(subclasses)
        slots = torch.arange(self.max_subclasses)[None, :] < torch.tensor(list(subclasses))[:, None]  # (M, S_max)
        self.register_buffer("slot_mask", slots[:, None, :].expand(-1, num_classes, -1).reshape(len(subclasses), 1, -1).clone())  # (M, 1, K)

    def _mask(self, logits: torch.Tensor) -> torch.Tensor:
        return logits if self.max_subclasses == 1 else logits.masked_fill(~self.slot_mask, MASKED_LOGIT)

    def class_scores(self, outputs: torch.Tensor) -> torch.Tensor:
        """The logsumexp over each class's slots (a class's probability is the sum of its subclass probabilities)."""
        if self.max_subclasses == 1:
            return outputs
        return torch.logsumexp(outputs.unflatten(-1, (self.num_classes, self.max_subclasses)), dim=-1)


class StackedMLP(_SlotHead, StudentStack):
    """M one-hidden-layer ReLU MLPs with optional subclass heads: ``forward(x) -> (M, B, C * S_max)`` logits.

    Student m's head has ``subclasses[m]`` slots per class; the other ``S_max - S_m`` slots are masked
    (``-1e9``), so a softmax over all C * S_max outputs puts no mass on them. ``class_scores`` is the logsumexp
    over each class's slots (a class's probability is the sum of its subclass probabilities).
    """

    _blocked = {"w1": 1, "b1": 0}
    _shared = ("slot_mask",)

    def __init__(self, in_dim: int, hidden: int, num_classes: int, subclasses: list[int] | tuple[int, ...], seed: int,
                 shared_init: bool = True) -> None:
        super().__init__()
        if in_dim < 1 or hidden < 1 or num_classes < 2 or not subclasses or min(subclasses) < 1:
            raise ValueError(f"invalid stacked MLP: in_dim={in_dim}, hidden={hidden}, classes={num_classes}, subclasses={list(subclasses)}")
        self.num_students, self.hidden, self.num_classes = len(subclasses), hidden, num_classes
        self.in_dim, max_subclasses = in_dim, max(subclasses)
        generator = torch.Generator().manual_seed(seed)
        count = 1 if shared_init else self.num_students
        first = [nn.Linear(in_dim, hidden) for _ in range(count)]
        last = [nn.Linear(hidden, num_classes * max_subclasses) for _ in range(count)]
        for layer in first + last:  # nn.Linear's default init, drawn from our own generator
            bound = 1.0 / layer.in_features**0.5
            with torch.no_grad():
                layer.weight.uniform_(-bound, bound, generator=generator)
                layer.bias.uniform_(-bound, bound, generator=generator)
        pick = lambda layers, m: layers[0 if shared_init else m]  # noqa: E731
        students = range(self.num_students)
        self.w1 = nn.Parameter(torch.cat([pick(first, m).weight.T for m in students], dim=1).detach().clone())  # (D, M*H)
        self.b1 = nn.Parameter(torch.cat([pick(first, m).bias for m in students]).detach().clone())  # (M*H,)
        self.w2 = nn.Parameter(torch.stack([pick(last, m).weight.T for m in students]).detach().clone())  # (M, H, K)
        self.b2 = nn.Parameter(torch.stack([pick(last, m).bias for m in students]).detach().clone())  # (M, K)
        self._init_slots(num_classes, subclasses)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = torch.relu((torch.sparse.mm(x, self.w1) if x.is_sparse else x @ self.w1) + self.b1)  # (B, M*H)
        hidden = hidden.view(len(x), self.num_students, self.hidden).transpose(0, 1)  # (M, B, H)
        return self._mask(torch.baddbmm(self.b2[:, None, :], hidden, self.w2))  # (M, B, K)

    def student(self, index: int) -> nn.Module:
        """Student ``index`` as an :class:`~kdlib.models.mlp.MLP` with ``C * S_max`` outputs (masked slots kept)."""
        self._check_index(index)
        model = MLP(self.in_dim, self.num_classes * self.max_subclasses, hidden=(self.hidden,))
        block = slice(index * self.hidden, (index + 1) * self.hidden)
        with torch.no_grad():
            model.body[1].weight.copy_(self.w1[:, block].T)
            model.body[1].bias.copy_(self.b1[block])
            model.head.weight.copy_(self.w2[index].T)
            model.head.bias.copy_(self.b2[index].masked_fill(~self.slot_mask[index, 0], MASKED_LOGIT))
        return model.train(self.training)


class StackedCNN(_SlotHead, StudentStack):
    """``forward(x) -> (M, B, C * S_max)``: the logits of M :class:`~kdlib.models.vision.SmallCNN` students of one config
    (``subclasses``: slots per class of each student's head, as in :class:`StackedMLP`; one slot by default)."""

    _shared = ("num_batches_tracked", "slot_mask")
    memory_format = torch.channels_last  # grouped convolutions run faster channels-last on CPU

    def __init__(self, config: CNNConfig, count: int, seed: int, shared_init: bool = True, subclasses: list[int] | tuple[int, ...] | None = None) -> None:
        super().__init__()
        if count < 1:
            raise ValueError(f"need at least one student, got {count}")
        if config.dropout:
            raise ValueError("the stacked CNN has no dropout")
        subclasses = [1] * count if subclasses is None else list(subclasses)
        if len(subclasses) != count:
            raise ValueError(f"need one subclass count per student: {count} students, {len(subclasses)} counts")
        self.config, self.num_students, self.num_classes = config, count, config.num_classes
        self._init_slots(config.num_classes, subclasses)
        self.head_config = replace(config, num_classes=config.num_classes * self.max_subclasses)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        students = [SmallCNN(self.head_config)] * count if shared_init else [SmallCNN(self.head_config) for _ in range(count)]
        torch.random.set_rng_state(generator_state)
        layers: list[nn.Module] = []
        channels = config.in_channels
        for index, width in enumerate(config.widths):
            conv = nn.Conv2d(channels * (count if index else 1), width * count, 3, padding=1, bias=False, groups=count if index else 1)
            with torch.no_grad():
                conv.weight.copy_(torch.cat([s.features[4 * index].weight for s in students]))
            layers += [conv, nn.BatchNorm2d(width * count), nn.MaxPool2d(2), nn.ReLU()]  # pool first, as SmallCNN
            channels = width
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        stack = lambda tensors: nn.Parameter(torch.stack([t.detach().clone() for t in tensors]))  # noqa: E731
        self.w_embed = stack([s.embedding[0].weight.T for s in students])  # (M, W, E)
        self.b_embed = stack([s.embedding[0].bias for s in students])  # (M, E)
        self.w_head = stack([s.head.weight.T for s in students])  # (M, E, K)
        self.b_head = stack([s.head.bias for s in students])  # (M, K)
        self._blocked = {name: 0 for name, _ in [*self.features.named_parameters(prefix="features"), *self.features.named_buffers(prefix="features")]}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected images (N, {self.config.in_channels}, H, W), got shape {tuple(x.shape)}")
        pooled = self.features(x).view(len(x), self.num_students, -1).transpose(0, 1)  # (M, B, W)
        embedded = torch.relu(torch.baddbmm(self.b_embed[:, None], pooled, self.w_embed))
        return self._mask(torch.baddbmm(self.b_head[:, None], embedded, self.w_head))

    def student(self, index: int) -> SmallCNN:
        """Student ``index`` as a standalone SmallCNN with ``C * S_max`` outputs (weights, BatchNorm statistics and
        the slot mask copied)."""
        self._check_index(index)
        model = SmallCNN(self.head_config)
        with torch.no_grad():
            for layer, width in enumerate(self.config.widths):
                conv, norm = self.features[4 * layer], self.features[4 * layer + 1]
                block = slice(index * width, (index + 1) * width)
                model.features[4 * layer].weight.copy_(conv.weight[block])
                target = model.features[4 * layer + 1]
                for name in ("weight", "bias", "running_mean", "running_var"):
                    getattr(target, name).copy_(getattr(norm, name)[block])
                target.num_batches_tracked.copy_(norm.num_batches_tracked)
            model.embedding[0].weight.copy_(self.w_embed[index].T)
            model.embedding[0].bias.copy_(self.b_embed[index])
            model.head.weight.copy_(self.w_head[index].T)
            model.head.bias.copy_(self.b_head[index].masked_fill(~self.slot_mask[index, 0], MASKED_LOGIT))
        return model.train(self.training)


def as_stack(model: nn.Module) -> StudentStack:
    """``model`` itself if it is a stack, else the module wrapped as a stack of one."""
    return model if isinstance(model, StudentStack) else SingleStudent(model)
