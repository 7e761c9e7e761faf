"""Notebook 00's end-to-end check: a student alone vs the same student with vanilla KD (Hinton et al. 2015).

The student sees ``n_train`` labelled examples drawn from its teacher's training subset; KD adds the teacher's
softened logits on the same examples. Temperature and alpha are Hinton's usual values, not tuned.
"""

from __future__ import annotations

import numpy as np
import torch

from kdlib.data import load
from kdlib.distill.task import DistillationTask
from kdlib.models import STUDENT_CNN, BagOfTokensStudent, CNNConfig, SmallCNN, cached_embeddings, load_tokenizer, tokenize_to_ids
from kdlib.teachers import Teacher, image_inputs, teacher_logits
from kdlib.train import TrainConfig

METHODS = {
    "student alone": {"name": "ce"},
    "student + KD": {"name": "kd", "temperature": 4.0, "alpha": 0.9},
}


def _subset(indices: np.ndarray, n: int) -> np.ndarray:
    if n > len(indices):
        raise ValueError(f"asked for {n} student examples but the teacher's training subset holds {len(indices)}")
    return np.sort(np.random.default_rng(1).permutation(indices)[:n])


def vision_task(teacher: Teacher, n_train: int, epochs: int = 60) -> DistillationTask:
    """A small-CNN student on ``n_train`` images of the teacher's dataset."""
    dataset = teacher.recipe.dataset
    train, test = load(dataset, "train"), load(dataset, "test")
    idx = _subset(teacher.train_idx, n_train)
    x_train = image_inputs(dataset, train.x[idx])
    config = CNNConfig(in_channels=x_train.shape[1], num_classes=len(teacher.classes), **STUDENT_CNN)
    return DistillationTask(
        name=f"{dataset} n={n_train}",
        x_train=x_train,
        y_train=torch.tensor(train.y[idx]),
        teacher_train=teacher_logits(teacher, x_train),
        x_val=image_inputs(dataset, train.x[teacher.val_idx]),
        y_val=torch.tensor(train.y[teacher.val_idx]),
        x_test=image_inputs(dataset, test.x),
        y_test=torch.tensor(test.y),
        make_student=lambda: SmallCNN(config),
        student_description={"kind": "SmallCNN", **STUDENT_CNN},
        methods=METHODS,
        config=TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, weight_decay=1e-4, patience=8),
    )


def text_task(teacher: Teacher, n_train: int, max_length: int = 64, epochs: int = 60) -> DistillationTask:
    """A bag-of-tokens student, trained from scratch on ``n_train`` texts of the teacher's training subset."""
    splits = teacher.extra["splits"]
    tokenizer = load_tokenizer(teacher.recipe.encoder)
    position = np.searchsorted(teacher.train_idx, _subset(teacher.train_idx, n_train))
    texts = [splits.train_texts[i] for i in position]
    x_train = tokenize_to_ids(tokenizer, texts, max_length)

    embeddings = torch.tensor(cached_embeddings(teacher.recipe.encoder, texts, teacher.recipe.max_length))
    student = {"kind": "BagOfTokensStudent", "vocab_size": tokenizer.vocab_size, "embed_dim": 64, "hidden": 64}
    return DistillationTask(
        name=f"{teacher.recipe.dataset} n={n_train}",
        x_train=x_train,
        y_train=torch.tensor(splits.train_labels[position]),
        teacher_train=teacher_logits(teacher, embeddings),
        x_val=tokenize_to_ids(tokenizer, splits.val_texts, max_length),
        y_val=torch.tensor(splits.val_labels),
        x_test=tokenize_to_ids(tokenizer, splits.test_texts, max_length),
        y_test=torch.tensor(splits.test_labels),
        make_student=lambda: BagOfTokensStudent(tokenizer.vocab_size, len(teacher.classes), 64, 64),
        student_description=student,
        methods=METHODS,
        config=TrainConfig(epochs=epochs, batch_size=64, lr=3e-3, weight_decay=0.0, patience=6),
    )
