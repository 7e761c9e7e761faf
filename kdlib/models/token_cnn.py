"""A small trainable text student over word pieces: token embeddings -> 1-D convolution -> max over time -> head.

Unlike a bag of tokens, the convolution sees short ordered windows (n-grams of word pieces), so the student can
represent phrase-level structure inside a class, which is what subclass targets ask it to reproduce (notebook 01).

* :class:`TokenCNN` -- one student, ``forward(ids (B, L)) -> (B, K)``;
* :class:`StackedTokenCNN` -- M of them as one network (``(M, B, C * S_max)``, subclass slots as in
  :class:`~kdlib.models.stacked.StackedMLP`); student m owns channel block m of the embedding table and of the
  convolution (a grouped convolution), and its own embedding and head matrices.

Ids are positions in a student vocabulary (0 = padding, 1 = out of vocabulary, see :func:`remap_to_vocabulary`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kdlib.models.stacked import MASKED_LOGIT, StudentStack, _SlotHead

PAD, UNKNOWN = 0, 1


def remap_to_vocabulary(ids: torch.Tensor, vocabulary: dict[int, int], pad_id: int = 0) -> torch.Tensor:
    """Tokenizer ids (N, L) -> student ids: ``vocabulary[token] + 2``, 1 for tokens outside it, 0 for padding."""
    if ids.ndim != 2:
        raise ValueError(f"expected token ids (N, L), got shape {tuple(ids.shape)}")
    lookup = np.full(max(int(ids.max()) + 1, max(vocabulary, default=0) + 1), UNKNOWN, dtype=np.int64)
    lookup[list(vocabulary)] = np.asarray(list(vocabulary.values()), dtype=np.int64) + 2
    lookup[pad_id] = PAD
    return torch.from_numpy(lookup[ids.numpy()])


def _check_ids(ids: torch.Tensor) -> None:
    if ids.ndim != 2 or ids.dtype != torch.long:
        raise ValueError(f"expected token ids (N, L) int64, got {ids.dtype} {tuple(ids.shape)}")


class TokenCNN(nn.Module):
    """Embedding (padding row zero) -> Conv1d(width ``kernel``) -> ReLU -> max over positions -> ReLU FC -> head."""

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 32, filters: int = 64, hidden: int = 32, kernel: int = 3) -> None:
        super().__init__()
        if vocab_size < 3 or num_classes < 2 or min(embed_dim, filters, hidden, kernel) < 1:
            raise ValueError(f"invalid token CNN: vocab={vocab_size}, classes={num_classes}, embed={embed_dim}, filters={filters}, "
                             f"hidden={hidden}, kernel={kernel}")
        self.tokens = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.conv = nn.Conv1d(embed_dim, filters, kernel, padding=kernel // 2)
        self.embedding = nn.Sequential(nn.Linear(filters, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        _check_ids(ids)
        windows = torch.relu(self.conv(self.tokens(ids).transpose(1, 2)))  # (B, F, L)
        return self.embedding(windows.amax(2))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids))


class StackedTokenCNN(_SlotHead, StudentStack):
    """``forward(ids) -> (M, B, C * S_max)``: M :class:`TokenCNN` students with optional subclass slots."""

    _shared = ("slot_mask",)

    def __init__(self, vocab_size: int, num_classes: int, subclasses: list[int] | tuple[int, ...], seed: int, embed_dim: int = 32,
                 filters: int = 64, hidden: int = 32, kernel: int = 3, shared_init: bool = True) -> None:
        super().__init__()
        self.num_students, self.num_classes = len(subclasses), num_classes
        self._init_slots(num_classes, subclasses)
        self.sizes = dict(vocab_size=vocab_size, embed_dim=embed_dim, filters=filters, hidden=hidden, kernel=kernel)
        outputs = num_classes * self.max_subclasses
        state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        made = [TokenCNN(vocab_size, outputs, embed_dim, filters, hidden, kernel) for _ in range(1 if shared_init else self.num_students)]
        torch.random.set_rng_state(state)
        students = [made[0 if shared_init else m] for m in range(self.num_students)]
        param = lambda tensors, dim=0: nn.Parameter(torch.cat([t.detach().clone() for t in tensors], dim))  # noqa: E731
        stacked = lambda tensors: nn.Parameter(torch.stack([t.detach().clone() for t in tensors]))  # noqa: E731
        self.tokens = param([s.tokens.weight for s in students], dim=1)  # (V, M*E)
        self.conv = nn.Conv1d(embed_dim * self.num_students, filters * self.num_students, kernel, padding=kernel // 2, groups=self.num_students)
        with torch.no_grad():
            self.conv.weight.copy_(torch.cat([s.conv.weight for s in students]))
            self.conv.bias.copy_(torch.cat([s.conv.bias for s in students]))
        self.w_embed = stacked([s.embedding[0].weight.T for s in students])  # (M, F, H)
        self.b_embed = stacked([s.embedding[0].bias for s in students])  # (M, H)
        self.w_head = stacked([s.head.weight.T for s in students])  # (M, H, K)
        self.b_head = stacked([s.head.bias for s in students])  # (M, K)
        self._blocked = {"tokens": 1, "conv.weight": 0, "conv.bias": 0}

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        _check_ids(ids)
        embedded = nn.functional.embedding(ids, self.tokens, padding_idx=PAD)  # (B, L, M*E)
        windows = torch.relu(self.conv(embedded.transpose(1, 2))).amax(2)  # (B, M*F)
        pooled = windows.view(len(ids), self.num_students, -1).transpose(0, 1)  # (M, B, F)
        hidden = torch.relu(torch.baddbmm(self.b_embed[:, None], pooled, self.w_embed))
        return self._mask(torch.baddbmm(self.b_head[:, None], hidden, self.w_head))

    def student(self, index: int) -> TokenCNN:
        """Student ``index`` as a standalone :class:`TokenCNN` with ``C * S_max`` outputs (unused slots masked)."""
        self._check_index(index)
        sizes = self.sizes
        model = TokenCNN(sizes["vocab_size"], self.num_classes * self.max_subclasses, sizes["embed_dim"], sizes["filters"], sizes["hidden"],
                         sizes["kernel"])
        e, f = sizes["embed_dim"], sizes["filters"]
        with torch.no_grad():
            model.tokens.weight.copy_(self.tokens[:, index * e : (index + 1) * e])
            model.conv.weight.copy_(self.conv.weight[index * f : (index + 1) * f])
            model.conv.bias.copy_(self.conv.bias[index * f : (index + 1) * f])
            model.embedding[0].weight.copy_(self.w_embed[index].T)
            model.embedding[0].bias.copy_(self.b_embed[index])
            model.head.weight.copy_(self.w_head[index].T)
            model.head.bias.copy_(self.b_head[index].masked_fill(~self.slot_mask[index, 0], MASKED_LOGIT))
        return model.train(self.training)
