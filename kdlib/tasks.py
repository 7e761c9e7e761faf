"""Every task builder: a teacher's outputs and the student's data, fixed before any student trains.

* :class:`TransferTask` -- a student learns from labels and the teacher's logits on the same examples (notebook 00);
* :class:`SubclassTask` -- a few-class task seen through a teacher's embeddings, for subclass targets (notebook 01);
* :class:`SemiSupervisedTask` -- a teacher trained on a few labels L labels a pool U; a labelled validation set V
  measures how reliable it is (notebooks 02-04).

Builders read data and teachers from the cache; a task's ``fingerprint()`` covers everything a student run depends
on, so cells keyed by it re-run when any of it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import scipy.sparse
import torch
from torch import nn

from kdlib.cache import Cache, fingerprint
from kdlib.data import load, semi_supervised_split
from kdlib.distill import get_objective
from kdlib.models import STUDENT_CNN, BagOfTokensStudent, CNNConfig, build_vocabulary, cached_embeddings, load_tokenizer, tokenize_to_ids
from kdlib.models.stacked import Inputs, StackedCNN, StudentStack, as_stack
from kdlib.models.token_cnn import StackedTokenCNN, remap_to_vocabulary
from kdlib.teachers import (
    LABEL_MAPS, FewLabelRecipe, Teacher, few_label_text_teacher, few_label_vision_teacher, image_inputs, teacher_features, teacher_logits,
    text_recipe, text_splits, text_teacher, vision_teacher,
)
from kdlib.train import TrainConfig, TrainSet, accuracy, fit, set_seed

TASK_VERSION = 2


def _sample(indices: np.ndarray, n: int, seed: int = 1) -> np.ndarray:
    if n > len(indices):
        raise ValueError(f"asked for {n} examples from a pool of {len(indices)}")
    return np.random.default_rng(seed).permutation(indices)[:n]


# --- transfer: labels + teacher logits on the same examples ---------------------------------------------------
@dataclass
class TransferTask:
    """Everything a student run of notebook 00 needs.

    Attributes:
        name: label for progress bars.
        x_train, y_train, teacher_train: student inputs, labels (-1 = unlabelled) and the teacher's logits on them.
        x_val, y_val: labelled validation set (early stopping); x_test, y_test: the test set (only evaluated).
        make_student: ``make_student(seed)`` builds one freshly initialised student.
        make_stack: ``make_stack(count, seed)`` builds ``count`` of them as one stack (None: the student cannot be
            stacked, and every method trains on its own; by the engine's independence the results are the same).
        student_description: plain-data description of the student, for the fingerprint.
        methods: method name -> objective spec, e.g. ``{"kd": {"name": "kd", "temperature": 4.0}}``.
        config: the students' optimisation recipe.
    """

    name: str
    x_train: Any
    y_train: torch.Tensor
    teacher_train: torch.Tensor
    x_val: Any
    y_val: torch.Tensor
    x_test: Any
    y_test: torch.Tensor
    make_student: Callable[[int], nn.Module]
    student_description: Mapping[str, Any]
    methods: Mapping[str, Mapping[str, Any]]
    config: TrainConfig
    make_stack: Callable[[int, int], StudentStack] | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.y_train)
        if len(self.teacher_train) != n or len(self.x_train) != n:
            raise ValueError(f"x_train, y_train and teacher_train must align, got {len(self.x_train)}, {n}, {len(self.teacher_train)}")
        for method, objective in self.methods.items():
            if "name" not in objective:
                raise ValueError(f"method {method!r} must name its objective, got {dict(objective)}")

    def fingerprint(self) -> str:
        """Content hash of the task (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = fingerprint({
                "data": [self.x_train, self.y_train, self.teacher_train, self.x_val, self.y_val, self.x_test, self.y_test],
                "student": dict(self.student_description), "methods": {k: dict(v) for k, v in self.methods.items()},
                "config": self.config, "version": TASK_VERSION,
            })
        return self._fingerprint

    def train(self, methods: list[str], seed: int) -> list[dict]:
        """Train one student per method (one stack when the student can be stacked; same initialisation and
        batches either way); one row per method."""
        unknown = [m for m in methods if m not in self.methods]
        if unknown or not methods:
            raise ValueError(f"unknown methods {unknown} for task {self.name!r}; available: {sorted(self.methods)}")
        groups = [methods] if self.make_stack is not None else [[m] for m in methods]
        rows = []
        for group in groups:
            set_seed(seed)
            stack = self.make_stack(len(group), seed) if self.make_stack is not None else as_stack(self.make_student(seed))
            history = fit(stack, [get_objective(**self.methods[m]) for m in group], TrainSet(self.x_train, self.y_train, self.teacher_train),
                          config=self.config, seed=seed, val=(self.x_val, self.y_val), desc=f"{self.name} s{seed}", progress=False)
            test = accuracy(stack, self.x_test, self.y_test)
            rows += [{"method": m, "test_accuracy": float(test[i]), "val_accuracy": float(history.best_val_accuracy[i]),
                      "best_step": int(history.best_step[i])} for i, m in enumerate(group)]
        return rows


def vision_transfer_task(teacher: Teacher, n_train: int, methods: Mapping[str, Mapping[str, Any]], config: TrainConfig,
                         subset_seed: int = 1, n_val: int | None = None, student: Mapping[str, Any] = STUDENT_CNN) -> TransferTask:
    """Stacked small-CNN students (``student``: widths and embedding size) on ``n_train`` images of the teacher's training
    subset (drawn with ``subset_seed``), validated on the first ``n_val`` images of the teacher's validation split."""
    dataset = teacher.recipe.dataset
    train, test = load(dataset, "train"), load(dataset, "test")
    idx = np.sort(_sample(teacher.train_idx, n_train, subset_seed))
    x_train = image_inputs(dataset, train.x[idx])
    cnn = CNNConfig(in_channels=x_train.shape[1], num_classes=len(teacher.classes), **student)
    return TransferTask(
        name=f"{dataset} n={n_train}", x_train=x_train, y_train=torch.tensor(train.y[idx]), teacher_train=teacher_logits(teacher, x_train),
        x_val=image_inputs(dataset, train.x[teacher.val_idx[:n_val]]), y_val=torch.tensor(train.y[teacher.val_idx[:n_val]]),
        x_test=image_inputs(dataset, test.x), y_test=torch.tensor(test.y),
        make_student=lambda seed: StackedCNN(cnn, 1, seed), make_stack=lambda count, seed: StackedCNN(cnn, count, seed),
        student_description={"kind": "SmallCNN", **student}, methods=methods, config=config,
    )


def text_transfer_task(teacher: Teacher, n_train: int, methods: Mapping[str, Mapping[str, Any]], config: TrainConfig, max_length: int = 64,
                       embed_dim: int = 64, hidden: int = 64, subset_seed: int = 1) -> TransferTask:
    """Bag-of-tokens students trained from scratch on ``n_train`` texts of the teacher's training subset (drawn with
    ``subset_seed``)."""
    splits = teacher.extra["splits"]
    tokenizer = load_tokenizer(teacher.recipe.encoder)
    position = np.searchsorted(teacher.train_idx, np.sort(_sample(teacher.train_idx, n_train, subset_seed)))
    texts = [splits.train_texts[i] for i in position]
    embeddings = torch.tensor(cached_embeddings(teacher.recipe.encoder, splits.train_texts, teacher.recipe.max_length))[position]  # cached with the teacher
    classes = len(teacher.classes)

    def make_student(seed: int) -> nn.Module:
        set_seed(seed)
        return BagOfTokensStudent(tokenizer.vocab_size, classes, embed_dim, hidden)

    return TransferTask(
        name=f"{teacher.recipe.dataset} n={n_train}", x_train=tokenize_to_ids(tokenizer, texts, max_length),
        y_train=torch.tensor(splits.train_labels[position]), teacher_train=teacher_logits(teacher, embeddings),
        x_val=tokenize_to_ids(tokenizer, splits.val_texts, max_length), y_val=torch.tensor(splits.val_labels),
        x_test=tokenize_to_ids(tokenizer, splits.test_texts, max_length), y_test=torch.tensor(splits.test_labels),
        make_student=make_student, methods=methods, config=config,
        student_description={"kind": "BagOfTokensStudent", "vocab_size": tokenizer.vocab_size, "embed_dim": embed_dim, "hidden": hidden},
    )


# --- subclass: a few-class task seen through the teacher's embeddings ------------------------------------------
@dataclass
class SubclassTask:
    """A teacher's view of a few-class task, and the student's data.

    The transfer set is the student's only training signal; the teacher's embeddings of (a sample of) its training
    set, with their true labels, fit projections and clusters; a labelled validation split serves early stopping and
    every hyper-parameter choice; the test split is reported, never selected on. ``make_stack(subclasses, seed)``
    builds one stacked student per entry of ``subclasses`` (its slots per class), described by ``student``.
    """

    name: str
    classes: tuple[str, ...]
    teacher_name: str
    teacher_test_accuracy: float
    x_transfer: Inputs
    y_transfer: torch.Tensor  # true labels of the transfer set (used only by the "labels only" baseline)
    logits_transfer: torch.Tensor
    embeddings_transfer: torch.Tensor
    x_val: Inputs
    y_val: torch.Tensor
    x_test: Inputs
    y_test: torch.Tensor
    embeddings_fit: torch.Tensor
    y_fit: torch.Tensor
    head_weight: torch.Tensor
    student: Mapping[str, Any]
    make_stack: Callable[[list[int], int], StudentStack] = field(repr=False)
    fine_transfer: torch.Tensor | None = None  # oracle subclass (index within its class) where a finer label exists
    fine_fit: torch.Tensor | None = None
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_fine(self) -> int | None:
        return None if self.fine_fit is None else int(self.fine_fit.max()) + 1

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            content = {k: v for k, v in self.__dict__.items() if k not in ("_fingerprint", "make_stack", "student")}
            self._fingerprint = fingerprint(content | {"student": dict(self.student), "version": TASK_VERSION})
        return self._fingerprint

    def summary(self) -> dict:
        return {
            "task": self.name, "classes": self.num_classes, "teacher": self.teacher_name, "teacher test acc": self.teacher_test_accuracy,
            "transfer": len(self.y_transfer), "fit (projections)": len(self.y_fit), "val": len(self.y_val), "test": len(self.y_test),
            "student": ", ".join(f"{k}={v}" for k, v in self.student.items()), "oracle subclasses": self.num_fine or "-",
        }


def subclass_vision_task(dataset: str, labels: str, teachers: str, n_transfer: int, n_fit: int, n_val: int, student: Mapping[str, Any] = STUDENT_CNN,
                         cache: Cache | None = None, teacher_seed: int = 0) -> SubclassTask:
    """A binarised (``labels="mod2"``) or original (``"fine"``) image task; small-CNN students (``student``: widths and
    embedding size) read the images.

    The transfer set is the first ``n_transfer`` of ``n_fit`` examples sampled from the teacher's training subset
    (``teachers``: the profile of the teacher recipe; ``teacher_seed``: which of its retrained teachers).
    """
    teacher = vision_teacher(dataset, teachers, labels, cache, seed=teacher_seed)
    train, test = load(dataset, "train"), load(dataset, "test")
    relabel = LABEL_MAPS[labels]
    fit_idx = _sample(teacher.train_idx, max(n_fit, n_transfer))
    val_idx = teacher.val_idx[:n_val]
    fit_inputs = image_inputs(dataset, train.x[fit_idx])
    logits_fit, embeddings_fit = teacher_features(teacher, fit_inputs, cache)
    fine = (lambda y: torch.tensor(y // 2)) if labels == "mod2" else None  # fine class 2s + c is subclass s of class c
    cnn = CNNConfig(in_channels=fit_inputs.shape[1], num_classes=len(teacher.classes), **student)
    return SubclassTask(
        name=f"{dataset} ({'y mod 2' if labels == 'mod2' else '10 classes'})", classes=teacher.classes, teacher_name=teacher.name,
        teacher_test_accuracy=teacher.test_accuracy, x_transfer=fit_inputs[:n_transfer],
        y_transfer=torch.tensor(relabel(train.y[fit_idx[:n_transfer]])), logits_transfer=logits_fit[:n_transfer],
        embeddings_transfer=embeddings_fit[:n_transfer], x_val=image_inputs(dataset, train.x[val_idx]), y_val=torch.tensor(relabel(train.y[val_idx])),
        x_test=image_inputs(dataset, test.x), y_test=torch.tensor(relabel(test.y)), embeddings_fit=embeddings_fit,
        y_fit=torch.tensor(relabel(train.y[fit_idx])), head_weight=teacher.model.head.weight.detach(),
        student={"kind": "SmallCNN", **student}, make_stack=lambda subclasses, seed: StackedCNN(cnn, len(subclasses), seed, subclasses=subclasses),
        fine_transfer=fine(train.y[fit_idx[:n_transfer]]) if fine else None, fine_fit=fine(train.y[fit_idx]) if fine else None,
    )


def subclass_text_task(dataset: str, teachers: str, n_transfer: int, n_fit: int, vocabulary_size: int, student: Mapping[str, Any] | None = None,
                       cache: Cache | None = None) -> SubclassTask:
    """A sentence-encoder teacher's task; token-CNN students (:class:`~kdlib.models.token_cnn.StackedTokenCNN`, sizes in
    ``student``) read word pieces, restricted to the transfer set's ``vocabulary_size`` most frequent ones."""
    teacher = text_teacher(dataset, teachers, cache=cache)
    splits, recipe = teacher.extra["splits"], teacher.recipe
    sentence = lambda texts: torch.tensor(cached_embeddings(recipe.encoder, texts, recipe.max_length, cache))  # noqa: E731
    fit_pos = _sample(np.arange(len(splits.train_texts)), max(n_fit, n_transfer))
    logits_fit, embeddings_fit = teacher_features(teacher, sentence(splits.train_texts)[fit_pos], cache)
    transfer_texts = [splits.train_texts[i] for i in fit_pos[:n_transfer]]
    tokenizer = load_tokenizer(recipe.encoder)
    vocabulary = build_vocabulary(tokenizer, transfer_texts, vocabulary_size, recipe.max_length)
    ids = lambda texts: remap_to_vocabulary(tokenize_to_ids(tokenizer, texts, recipe.max_length), vocabulary, tokenizer.pad_token_id or 0)  # noqa: E731
    sizes = dict(student or {})
    classes = len(teacher.classes)
    return SubclassTask(
        name=dataset, classes=teacher.classes, teacher_name=teacher.name, teacher_test_accuracy=teacher.test_accuracy,
        x_transfer=ids(transfer_texts), y_transfer=torch.tensor(splits.train_labels[fit_pos[:n_transfer]]), logits_transfer=logits_fit[:n_transfer],
        embeddings_transfer=embeddings_fit[:n_transfer], x_val=ids(splits.val_texts), y_val=torch.tensor(splits.val_labels),
        x_test=ids(splits.test_texts), y_test=torch.tensor(splits.test_labels), embeddings_fit=embeddings_fit,
        y_fit=torch.tensor(splits.train_labels[fit_pos]), head_weight=teacher.model.head.weight.detach(),
        student={"kind": "TokenCNN", "vocabulary": len(vocabulary) + 2, "max_length": recipe.max_length, **sizes},
        make_stack=lambda subclasses, seed: StackedTokenCNN(len(vocabulary) + 2, classes, subclasses, seed, **sizes),
    )


# --- semi-supervised: a few-label teacher labels a pool ----------------------------------------------------------
@dataclass
class SemiSupervisedTask:
    """One (dataset, |L|, seed): student inputs for every split, true labels, and the teacher's probabilities.

    ``y_unlabelled`` is the truth on U: only oracles and diagnostics may read it.
    """

    name: str
    dataset: str
    n_labelled: int
    seed: int
    classes: tuple[str, ...]
    x_labelled: Inputs
    y_labelled: torch.Tensor
    x_unlabelled: Inputs
    y_unlabelled: torch.Tensor
    teacher_unlabelled: torch.Tensor
    x_val: Inputs
    y_val: torch.Tensor
    teacher_val: torch.Tensor
    x_test: Inputs
    y_test: torch.Tensor
    teacher_test: torch.Tensor
    vocabulary_size: int | None = None  # token inputs: ids are < vocabulary_size (None: images or feature rows)
    teacher_training: Mapping[str, float] = field(default_factory=dict, repr=False)  # epochs, best epoch, seconds (not in the fingerprint)
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def teacher_accuracy(self, split: str = "test") -> float:
        """Top-1 accuracy of the teacher on ``"unlabelled"``, ``"val"`` or ``"test"``."""
        probs, labels = {"unlabelled": (self.teacher_unlabelled, self.y_unlabelled), "val": (self.teacher_val, self.y_val),
                         "test": (self.teacher_test, self.y_test)}[split]
        return (probs.argmax(1) == labels).float().mean().item()

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            content = {k: v for k, v in self.__dict__.items() if k not in ("_fingerprint", "teacher_training")}
            self._fingerprint = fingerprint(content | {"version": TASK_VERSION})
        return self._fingerprint

    def training_set(self, teacher_pool: torch.Tensor | None = None) -> TrainSet:
        """L then U as one training set: true labels on L, -1 on U; teacher log-probabilities as logits on both
        (one-hot on L, so that objectives read one tensor), ``teacher_pool`` replacing them on U if given."""
        x = torch.cat([self.x_labelled, self.x_unlabelled]) if isinstance(self.x_labelled, torch.Tensor) else \
            scipy.sparse.vstack([self.x_labelled, self.x_unlabelled]).tocsr()
        pool = self.teacher_unlabelled if teacher_pool is None else teacher_pool
        probs = torch.cat([nn.functional.one_hot(self.y_labelled, self.num_classes).float(), pool])
        labels = torch.cat([self.y_labelled, torch.full((len(self.y_unlabelled),), -1, dtype=self.y_labelled.dtype)])
        return TrainSet(x, labels, teacher=torch.log(probs.clamp_min(1e-12)))

    def on_training_set(self, pool_values: torch.Tensor, labelled_value: float = 1.0) -> torch.Tensor:
        """A per-example vector or matrix over U, padded with ``labelled_value`` rows for L (training-set order)."""
        pad = torch.full((len(self.y_labelled), *pool_values.shape[1:]), labelled_value, dtype=pool_values.dtype)
        return torch.cat([pad, pool_values])

    def summary(self) -> dict:
        confidence = self.teacher_unlabelled.max(1).values
        return {"task": self.name, "|L|": len(self.y_labelled), "|V|": len(self.y_val), "|U|": len(self.y_unlabelled),
                "teacher acc (test)": self.teacher_accuracy("test"), "teacher acc (U)": self.teacher_accuracy("unlabelled"),
                "mean teacher confidence (U)": confidence.mean().item(),
                **{f"teacher {k.replace('_', ' ')}": v for k, v in self.teacher_training.items() if k != "seconds"}}


def text_semisup_task(dataset: str, n_labelled: int, *, n_unlabelled: int, seed: int, profile: str = "full", n_validation: int = 500,
                      vocabulary_size: int = 8000, student_length: int = 40, cache: Cache | None = None) -> SemiSupervisedTask:
    """A frozen-encoder teacher (cached sentence embeddings + an MLP head fitted to L, early-stopped on V) labels U; the
    student reads the first ``student_length`` word-piece ids (40 keeps 99 % of SST-2's training phrases and 94 % of its
    test sentences whole), restricted to U's ``vocabulary_size`` most frequent ones (a token-CNN student). The pool is
    the text teacher's training subset of ``profile``; test is its test set."""
    cache = cache or Cache()
    recipe = text_recipe(dataset, profile)
    splits = text_splits(recipe)
    sentences = torch.tensor(cached_embeddings(recipe.encoder, splits.train_texts, recipe.max_length, cache))
    test_sentences = torch.tensor(cached_embeddings(recipe.encoder, splits.test_texts, recipe.max_length, cache))
    split = semi_supervised_split(splits.train_labels, n_labelled=n_labelled, n_validation=n_validation, n_unlabelled=n_unlabelled, seed=seed)
    classes = load(dataset, "test").classes
    y_pool = torch.tensor(splits.train_labels)
    teacher, training = few_label_text_teacher(sentences[split.labelled], y_pool[split.labelled], len(classes), recipe.hidden, seed,
                                               validation=(sentences[split.validation], y_pool[split.validation]), cache=cache)
    probs = {name: torch.softmax(teacher_logits(teacher, x, cache), 1)
             for name, x in (("U", sentences[split.unlabelled]), ("V", sentences[split.validation]), ("test", test_sentences))}
    tokenizer = load_tokenizer(recipe.encoder)
    texts = lambda idx: [splits.train_texts[i] for i in idx]  # noqa: E731
    vocabulary = build_vocabulary(tokenizer, texts(split.unlabelled), vocabulary_size, student_length)
    ids = lambda t: remap_to_vocabulary(tokenize_to_ids(tokenizer, t, student_length), vocabulary, tokenizer.pad_token_id or 0)  # noqa: E731
    return SemiSupervisedTask(
        name=f"{dataset} |L|={n_labelled}", dataset=dataset, n_labelled=n_labelled, seed=seed, classes=classes,
        x_labelled=ids(texts(split.labelled)), y_labelled=y_pool[split.labelled], x_unlabelled=ids(texts(split.unlabelled)),
        y_unlabelled=y_pool[split.unlabelled], teacher_unlabelled=probs["U"], x_val=ids(texts(split.validation)),
        y_val=y_pool[split.validation], teacher_val=probs["V"], x_test=ids(splits.test_texts), y_test=torch.tensor(splits.test_labels),
        teacher_test=probs["test"], vocabulary_size=len(vocabulary) + 2, teacher_training=training,
    )


def vision_semisup_task(dataset: str, n_labelled: int, *, n_unlabelled: int, seed: int, n_validation: int = 500,
                        recipe: FewLabelRecipe | None = None, teacher: Teacher | None = None, n_test: int | None = None,
                        cache: Cache | None = None) -> SemiSupervisedTask:
    """Split ``dataset``'s training set into L / V / U (stratified, by ``seed``), train the teacher on L (early-stopped
    on V), label U.

    With ``teacher`` (e.g. the shared teacher trained on the whole training set), that teacher labels U instead: a
    clean-teacher control. Students read the standardised images (N, C, H, W). ``n_test``: the first ``n_test`` test
    images only (a fixed subset, for quick runs; None: the whole test split).
    """
    recipe = recipe or FewLabelRecipe(augment=dataset == "cifar10")
    cache = cache or Cache()
    train, test = load(dataset, "train"), load(dataset, "test")
    if n_test is not None:
        test = test.subset(np.arange(min(n_test, len(test))))
    split = semi_supervised_split(train.y, n_labelled=n_labelled, n_validation=n_validation, n_unlabelled=n_unlabelled, seed=seed)
    inputs = {name: image_inputs(dataset, train.x[idx]) for name, idx in (("L", split.labelled), ("V", split.validation), ("U", split.unlabelled))}
    inputs["test"] = image_inputs(dataset, test.x)
    labels = {"L": train.y[split.labelled], "V": train.y[split.validation], "U": train.y[split.unlabelled], "test": test.y}
    if teacher is None:
        model, training = few_label_vision_teacher(dataset, split.labelled, recipe, seed, split.validation, cache)
    else:
        model, training = teacher, {}
    probs = {name: torch.softmax(teacher_logits(model, inputs[name], cache), 1) for name in ("U", "V", "test")}
    y = {name: torch.tensor(np.asarray(v)) for name, v in labels.items()}
    return SemiSupervisedTask(
        name=f"{dataset} |L|={n_labelled}" + ("" if teacher is None else f" (teacher {teacher.name})"), dataset=dataset, n_labelled=n_labelled,
        seed=seed, classes=train.classes, x_labelled=inputs["L"], y_labelled=y["L"], x_unlabelled=inputs["U"], y_unlabelled=y["U"],
        teacher_unlabelled=probs["U"], x_val=inputs["V"], y_val=y["V"], teacher_val=probs["V"], x_test=inputs["test"], y_test=y["test"],
        teacher_test=probs["test"], teacher_training=training,
    )
