"""A small text student trained from scratch on token ids (no pretrained weights)."""

from __future__ import annotations

from typing import Sequence

from collections import Counter

import numpy as np
import scipy.sparse
import torch
from torch import nn

PAD_ID = 0


def tokenize_to_ids(tokenizer, texts: Sequence[str], max_length: int = 64) -> torch.Tensor:
    """Token ids (N, max_length), right-padded with ``PAD_ID``; special tokens dropped.

    Uses the encoder's WordPiece tokenizer so the student and teacher read the same subwords.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be >= 1, got {max_length}")
    encoded = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=max_length)["input_ids"]
    ids = np.full((len(encoded), max_length), PAD_ID, dtype=np.int64)
    for row, tokens in enumerate(encoded):
        ids[row, : len(tokens)] = tokens
    return torch.from_numpy(ids)


def build_vocabulary(tokenizer, texts: Sequence[str], size: int, max_length: int = 64) -> dict[int, int]:
    """The ``size`` most frequent token ids in ``texts`` -> column index (ties broken by token id)."""
    if size < 1:
        raise ValueError(f"vocabulary size must be >= 1, got {size}")
    counts = Counter(int(t) for row in tokenize_to_ids(tokenizer, texts, max_length).tolist() for t in row if t != PAD_ID)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:size]
    return {token: column for column, (token, _) in enumerate(ranked)}


def bag_of_tokens(tokenizer, texts: Sequence[str], vocabulary: dict[int, int], max_length: int = 64) -> scipy.sparse.csr_matrix:
    """Mean-pooled one-hot tokens (N, |vocabulary|) as a sparse matrix: the input of an ``EmbeddingBag(mode="mean")``.

    Tokens outside the vocabulary are dropped; a text with none left is an all-zero row.
    """
    ids = tokenize_to_ids(tokenizer, texts, max_length).numpy()
    lookup = np.full(max(tokenizer.vocab_size, max(vocabulary, default=0) + 1), -1, dtype=np.int64)
    lookup[list(vocabulary)] = list(vocabulary.values())
    columns = lookup[ids]
    row_idx, col = np.nonzero(columns >= 0)
    matrix = scipy.sparse.csr_matrix(
        (np.ones(len(row_idx), dtype=np.float32), (row_idx, columns[row_idx, col])), shape=(len(texts), len(vocabulary))
    )
    lengths = np.asarray(matrix.sum(1)).ravel()
    return scipy.sparse.diags(1.0 / np.maximum(lengths, 1.0)).astype(np.float32) @ matrix


class BagOfTokensStudent(nn.Module):
    """Mean of learned token embeddings (``nn.EmbeddingBag``, padding ignored) -> hidden ReLU layer -> head.

    A fastText-style student: orders of magnitude smaller and faster than the frozen encoder teachers.
    """

    def __init__(self, vocab_size: int, num_classes: int, embed_dim: int = 64, hidden: int = 64) -> None:
        super().__init__()
        if vocab_size < 2 or num_classes < 2 or embed_dim < 1 or hidden < 1:
            raise ValueError(f"invalid student: vocab={vocab_size}, classes={num_classes}, embed={embed_dim}, hidden={hidden}")
        self.vocab_size = vocab_size
        self.bag = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", padding_idx=PAD_ID)
        self.embedding = nn.Sequential(nn.Linear(embed_dim, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        if ids.ndim != 2 or ids.dtype != torch.long:
            raise ValueError(f"expected token ids (N, L) int64, got {ids.dtype} {tuple(ids.shape)}")
        return self.embedding(self.bag(ids))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(ids))
