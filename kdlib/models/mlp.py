"""Multi-layer perceptrons with the kdlib classifier interface (``embed`` + ``head``)."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    """Flatten -> [Linear -> ReLU -> Dropout] per hidden width -> linear head.

    With no hidden layers the model is a linear classifier and ``embed`` is the flattened input.
    """

    def __init__(self, in_dim: int, num_classes: int, hidden: tuple[int, ...] = (256,), dropout: float = 0.0) -> None:
        super().__init__()
        if in_dim < 1 or num_classes < 2 or any(h < 1 for h in hidden) or not 0 <= dropout < 1:
            raise ValueError(f"invalid MLP: in_dim={in_dim}, num_classes={num_classes}, hidden={hidden}, dropout={dropout}")
        self.in_dim = in_dim
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x[0].numel() != self.in_dim:
            raise ValueError(f"expected inputs with {self.in_dim} features, got shape {tuple(x.shape)}")
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
