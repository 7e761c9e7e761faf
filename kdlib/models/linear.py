"""Linear and deep-linear students (notebook 07): M of them side by side behind the stack contract ``(M, B, K)``.

* :class:`StackedLinear` -- multinomial logistic regressions with a bias, ``z_m = a W_m + b_m``. With an L2 penalty
  on every parameter the training objective is strongly convex (the paper's linear case).
* :class:`StackedDeepLinear` -- deep linear networks ``z_m = ((a W1_m + b1_m) W2_m + b2_m) ...``: linear in the
  input, not in the parameters (the paper's deep-linear case).

Every parameter holds its students on axis 0, so a stack's ``student_views`` are its parameters and student m's
gradient comes from student m's loss alone. Initial weights come only from the seed: ``nn.Linear``'s default
uniform draw (or zeros for :class:`StackedLinear` with ``init="zeros"``), the same for every student.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from kdlib.models.stacked import StudentStack


def _uniform(shape: tuple[int, ...], fan_in: int, generator: torch.Generator) -> torch.Tensor:
    bound = 1.0 / fan_in**0.5
    return (torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound


class StackedDeepLinear(StudentStack):
    """M deep linear networks of widths ``in_dim -> *hidden -> num_classes``, in float64: ``forward -> (M, B, K)``.

    ``weights[l]`` is (M, d_l, d_{l+1}) and ``biases[l]`` (M, d_{l+1}); no activation between layers.
    """

    def __init__(self, in_dim: int, num_classes: int, count: int, seed: int, hidden: tuple[int, ...] = (),
                 init: Literal["uniform", "zeros"] = "uniform") -> None:
        super().__init__()
        if in_dim < 1 or num_classes < 2 or count < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"invalid linear stack: in_dim={in_dim}, classes={num_classes}, count={count}, hidden={hidden}")
        if init not in ("uniform", "zeros") or (init == "zeros" and hidden):
            raise ValueError(f"init must be 'uniform', or 'zeros' for a one-layer model (zeros make a deep linear net stationary), got {init!r}")
        self.num_students, self.num_classes, self.in_dim, self.hidden = count, num_classes, in_dim, tuple(hidden)
        generator = torch.Generator().manual_seed(seed)
        widths = (in_dim, *hidden, num_classes)
        weights, biases = [], []
        for fan_in, fan_out in zip(widths[:-1], widths[1:]):
            w = _uniform((fan_in, fan_out), fan_in, generator) if init == "uniform" else torch.zeros(fan_in, fan_out, dtype=torch.float64)
            b = _uniform((fan_out,), fan_in, generator) if init == "uniform" else torch.zeros(fan_out, dtype=torch.float64)
            weights.append(nn.Parameter(w.expand(count, -1, -1).clone()))
            biases.append(nn.Parameter(b.expand(count, -1).clone()))
        self.weights, self.biases = nn.ParameterList(weights), nn.ParameterList(biases)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"expected inputs (B, {self.in_dim}), got shape {tuple(x.shape)}")
        first = self.weights[0]  # one (B, D) x (D, M * d_1) product: much faster than a batched product on a broadcast input
        h = (x @ first.permute(1, 0, 2).reshape(self.in_dim, -1)).view(len(x), self.num_students, -1).transpose(0, 1) + self.biases[0][:, None, :]
        for w, b in zip(self.weights[1:], self.biases[1:]):
            h = torch.baddbmm(b[:, None, :], h, w)
        return h

    def student(self, index: int) -> nn.Sequential:
        """Student ``index`` as a standalone ``nn.Sequential`` of ``nn.Linear`` layers (float64)."""
        self._check_index(index)
        layers = []
        for w, b in zip(self.weights, self.biases):
            layer = nn.Linear(w.shape[1], w.shape[2], dtype=torch.float64)
            with torch.no_grad():
                layer.weight.copy_(w[index].T)
                layer.bias.copy_(b[index])
            layers.append(layer)
        return nn.Sequential(*layers).train(self.training)

    def load_student(self, index: int, parameters: list[torch.Tensor]) -> None:
        """Set student ``index`` to ``parameters`` (one tensor per parameter of one student, in ``parameters()`` order)."""
        self._check_index(index)
        own = list(self.parameters())
        if len(parameters) != len(own) or any(p.shape != q.shape[1:] for p, q in zip(parameters, own)):
            raise ValueError(f"need {len(own)} tensors shaped {[tuple(q.shape[1:]) for q in own]}, got {[tuple(p.shape) for p in parameters]}")
        with torch.no_grad():
            for p, q in zip(parameters, own):
                q[index] = p

    def student_parameters(self, index: int) -> list[torch.Tensor]:
        """Copies of student ``index``'s parameters (the inverse of :meth:`load_student`)."""
        self._check_index(index)
        return [q[index].detach().clone() for q in self.parameters()]


class StackedLinear(StackedDeepLinear):
    """M multinomial logistic regressions ``z_m = a W_m + b_m`` (a deep linear stack without hidden layers)."""

    def __init__(self, in_dim: int, num_classes: int, count: int, seed: int, init: Literal["uniform", "zeros"] = "uniform") -> None:
        super().__init__(in_dim, num_classes, count, seed, hidden=(), init=init)
