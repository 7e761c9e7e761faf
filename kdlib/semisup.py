"""The semi-supervised distillation harness shared by notebooks 02 (SLaM), 03 (weighted distillation) and 04 (RAD).

A teacher trained on a few labelled examples L labels a large unlabelled pool U; a labelled validation set V
(500 examples, as in the SLaM paper) measures how reliable the teacher is; students train on L plus the
teacher-labelled U and are tested on the official test split. |L| controls how noisy the teacher is.

The teacher (the shared CNN architecture) is trained on L alone for a fixed number of steps, without early
stopping: like a teacher fitted to few labels in practice, it ends confident on L and noisy, and overconfident,
elsewhere. One teacher per (dataset, |L|, seed) is trained once and cached with its probabilities on U, V and test.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse
import torch
from torch import nn

from kdlib.cache import Cache, fingerprint
from kdlib.data import data_version, load, semi_supervised_split
from kdlib.models import MLP, TEACHER_CNN, CNNConfig, SmallCNN, bag_of_tokens, build_vocabulary, cached_embeddings, load_tokenizer, random_flip_crop
from kdlib.profiles import pick
from kdlib.stacked import Inputs
from kdlib.teachers import Teacher, image_inputs, teacher_logits, text_recipe, text_splits
from kdlib.train import TrainConfig, fit, predict_outputs, set_seed

HARNESS_VERSION = 1


@dataclass(frozen=True)
class NoisyTeacherRecipe:
    """How the teacher is trained on L: about ``steps`` AdamW steps of ``batch_size`` (at least ``min_epochs`` epochs)."""

    steps: int = 800
    min_epochs: int = 10
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 5e-4
    augment: bool = True

    def config(self, n_labelled: int) -> TrainConfig:
        epochs = max(self.min_epochs, math.ceil(self.steps / math.ceil(n_labelled / self.batch_size)))
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay, patience=None, cosine=True)


def noisy_teacher_recipe(dataset: str, profile: str) -> NoisyTeacherRecipe:
    """The teacher recipe of a profile: about 800 steps in full, 60 in quick; flip/crop augmentation on CIFAR-10."""
    steps, min_epochs = pick(profile, {"quick": (60, 2), "full": (800, 3)})
    return NoisyTeacherRecipe(steps=steps, min_epochs=min_epochs, augment=dataset == "cifar10")


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
    teacher_seconds: float
    _fingerprint: str | None = field(default=None, repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def teacher_accuracy(self, split: str = "test") -> float:
        """Top-1 accuracy of the teacher on ``"unlabelled"``, ``"val"`` or ``"test"``."""
        probs, labels = {"unlabelled": (self.teacher_unlabelled, self.y_unlabelled), "val": (self.teacher_val, self.y_val), "test": (self.teacher_test, self.y_test)}[split]
        return (probs.argmax(1) == labels).float().mean().item()

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = fingerprint({k: v for k, v in self.__dict__.items() if k not in ("_fingerprint", "teacher_seconds")})
        return self._fingerprint

    def summary(self) -> dict:
        confidence = self.teacher_unlabelled.max(1).values
        return {
            "task": self.name,
            "|L|": len(self.y_labelled),
            "|V|": len(self.y_val),
            "|U|": len(self.y_unlabelled),
            "teacher acc (test)": self.teacher_accuracy("test"),
            "teacher acc (U)": self.teacher_accuracy("unlabelled"),
            "mean teacher confidence (U)": confidence.mean().item(),
        }


def text_semisup_task(
    dataset: str,
    n_labelled: int,
    *,
    n_unlabelled: int,
    seed: int,
    profile: str = "full",
    n_validation: int = 500,
    vocabulary_size: int = 5000,
    teacher_steps: int = 400,
    cache: Cache | None = None,
) -> SemiSupervisedTask:
    """A frozen-encoder teacher (cached sentence embeddings + an MLP head fitted to L) labels U; the student reads a
    bag of U's most frequent tokens. The pool is the text teacher's training subset of ``profile``; test is its test set.
    """
    cache = cache or Cache()
    recipe = text_recipe(dataset, profile)
    splits = text_splits(recipe)
    sentences = torch.tensor(cached_embeddings(recipe.encoder, splits.train_texts, recipe.max_length, cache))
    test_sentences = torch.tensor(cached_embeddings(recipe.encoder, splits.test_texts, recipe.max_length, cache))
    split = semi_supervised_split(splits.train_labels, n_labelled=n_labelled, n_validation=n_validation, n_unlabelled=n_unlabelled, seed=seed)
    classes = load(dataset, "test").classes
    y_pool = torch.tensor(splits.train_labels)
    config = TrainConfig(epochs=max(10, math.ceil(teacher_steps / math.ceil(n_labelled / 32))), batch_size=32, lr=1e-3, weight_decay=1e-4, patience=None, cosine=True)
    key = {"dataset": dataset, "recipe": recipe, "labelled": split.labelled, "config": config, "seed": seed, "version": HARNESS_VERSION}

    def train_teacher() -> dict:
        set_seed(seed)
        model = MLP(sentences.shape[1], len(classes), recipe.hidden)
        start = time.perf_counter()
        fit(model, nn.functional.cross_entropy, sentences[split.labelled], (y_pool[split.labelled],), config=config, seed=seed, desc=f"teacher {dataset} |L|={n_labelled}")
        probs = {name: torch.softmax(predict_outputs(model, x), 1) for name, x in (("U", sentences[split.unlabelled]), ("V", sentences[split.validation]), ("test", test_sentences))}
        return {"probs": probs, "seconds": time.perf_counter() - start}

    entry = cache.get_or_compute("semisup_teachers", key, train_teacher)
    tokenizer = load_tokenizer(recipe.encoder)
    texts = lambda idx: [splits.train_texts[i] for i in idx]  # noqa: E731
    vocabulary = build_vocabulary(tokenizer, texts(split.unlabelled), vocabulary_size)
    bag = lambda t: bag_of_tokens(tokenizer, t, vocabulary)  # noqa: E731
    return SemiSupervisedTask(
        name=f"{dataset} |L|={n_labelled}", dataset=dataset, n_labelled=n_labelled, seed=seed, classes=classes,
        x_labelled=bag(texts(split.labelled)), y_labelled=y_pool[split.labelled], x_unlabelled=bag(texts(split.unlabelled)),
        y_unlabelled=y_pool[split.unlabelled], teacher_unlabelled=entry["probs"]["U"], x_val=bag(texts(split.validation)),
        y_val=y_pool[split.validation], teacher_val=entry["probs"]["V"], x_test=bag(splits.test_texts),
        y_test=torch.tensor(splits.test_labels), teacher_test=entry["probs"]["test"], teacher_seconds=entry["seconds"],
    )


def vision_semisup_task(
    dataset: str,
    n_labelled: int,
    *,
    n_unlabelled: int,
    seed: int,
    n_validation: int = 500,
    recipe: NoisyTeacherRecipe | None = None,
    teacher: Teacher | None = None,
    cache: Cache | None = None,
) -> SemiSupervisedTask:
    """Split ``dataset``'s training set into L / V / U (stratified, by ``seed``), train the teacher on L, label U.

    With ``teacher`` (e.g. the shared teacher trained on the whole training set), that teacher labels U instead: a
    clean-teacher control.
    """
    recipe = recipe or NoisyTeacherRecipe(augment=dataset == "cifar10")
    cache = cache or Cache()
    train, test = load(dataset, "train"), load(dataset, "test")
    split = semi_supervised_split(train.y, n_labelled=n_labelled, n_validation=n_validation, n_unlabelled=n_unlabelled, seed=seed)
    inputs = {name: image_inputs(dataset, train.x[idx]) for name, idx in (("L", split.labelled), ("V", split.validation), ("U", split.unlabelled))}
    inputs["test"] = image_inputs(dataset, test.x)
    labels = {"L": train.y[split.labelled], "V": train.y[split.validation], "U": train.y[split.unlabelled], "test": test.y}
    key = {"dataset": dataset, "data": data_version(dataset), "labelled": split.labelled, "recipe": recipe, "seed": seed, "version": HARNESS_VERSION}

    def train_teacher() -> dict:
        set_seed(seed)
        model = SmallCNN(CNNConfig(in_channels=inputs["L"].shape[1], num_classes=len(train.classes), **TEACHER_CNN))
        start = time.perf_counter()
        fit(
            model, nn.functional.cross_entropy, inputs["L"], (torch.tensor(labels["L"]),), config=recipe.config(n_labelled), seed=seed,
            augment=random_flip_crop if recipe.augment else None, desc=f"teacher {dataset} |L|={n_labelled} s{seed}",
        )
        probs = {name: torch.softmax(predict_outputs(model, inputs[name]), 1) for name in ("U", "V", "test")}
        return {"probs": probs, "seconds": time.perf_counter() - start}

    if teacher is None:
        entry = cache.get_or_compute("semisup_teachers", key, train_teacher)
    else:
        entry = {"probs": {name: torch.softmax(teacher_logits(teacher, inputs[name], cache), 1) for name in ("U", "V", "test")}, "seconds": teacher.train_seconds}
    flat = {name: x.flatten(1) for name, x in inputs.items()}
    y = {name: torch.tensor(np.asarray(v)) for name, v in labels.items()}
    return SemiSupervisedTask(
        name=f"{dataset} |L|={n_labelled}" + ("" if teacher is None else f" (teacher {teacher.name})"), dataset=dataset, n_labelled=n_labelled, seed=seed,
        classes=train.classes, x_labelled=flat["L"], y_labelled=y["L"], x_unlabelled=flat["U"], y_unlabelled=y["U"], teacher_unlabelled=entry["probs"]["U"],
        x_val=flat["V"], y_val=y["V"], teacher_val=entry["probs"]["V"], x_test=flat["test"], y_test=y["test"], teacher_test=entry["probs"]["test"],
        teacher_seconds=entry["seconds"],
    )


# --- students -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnlabelledObjective:
    """What one student minimises on the teacher-labelled pool U (on L it always minimises CE on the true labels).

    Per example of U: ``weight * CE(targets, p)`` where ``p`` is the student's softmax, or, when ``alpha`` is set,
    SLaM's ``weight * CE(targets, mix(p; alpha, mask))``. When ``teacher_error`` (the estimated probability that the
    teacher's label is wrong) is set, the loss is also multiplied, at every step, by the debiasing weight of
    weighted distillation, which depends on the current student (:func:`kdlib.distill.weighted.debiasing_weight`).
    """

    name: str
    targets: torch.Tensor  # (N_U, C)
    weights: torch.Tensor  # (N_U,)
    alpha: torch.Tensor | None = None  # (N_U,)
    mask: torch.Tensor | None = None  # (N_U, C)
    normalise: bool = False
    teacher_error: torch.Tensor | None = None  # (N_U,)


@dataclass(frozen=True)
class SemiSupervisedStudent:
    """The MLP student on pixels (one hidden layer) and its optimisation."""

    hidden: int
    train: TrainConfig


def train_students(
    task: SemiSupervisedTask, objectives: list[UnlabelledObjective], seed: int, student: SemiSupervisedStudent, cache: Cache | None = None
) -> list[dict]:
    """Train one student per objective on L ∪ U (stacked: same initialisation and batches); cached.

    Returns one row per objective: its name, best validation accuracy and test accuracy (and, for objectives with a
    ``teacher_error``, ``unlabelled_weights``: the debiasing weights on U under the final student).
    """
    from kdlib.distill.slam import slam_loss
    from kdlib.distill.weighted import debiasing_weight, distortion
    from kdlib.stacked import StackedMLP, fit_stacked, stacked_accuracy, stacked_class_scores

    if not objectives:
        raise ValueError("no objectives to train")
    n_l, n_u, c = len(task.y_labelled), len(task.y_unlabelled), task.num_classes
    for o in objectives:
        if o.targets.shape != (n_u, c) or o.weights.shape != (n_u,) or (o.teacher_error is not None and o.teacher_error.shape != (n_u,)):
            raise ValueError(f"objective {o.name!r}: targets must be ({n_u}, {c}), weights and teacher_error ({n_u},)")
    key = {"task": task.fingerprint(), "objectives": objectives, "seed": seed, "student": student}

    def compute() -> list[dict]:
        x = torch.cat([task.x_labelled, task.x_unlabelled]) if isinstance(task.x_labelled, torch.Tensor) else scipy.sparse.vstack([task.x_labelled, task.x_unlabelled]).tocsr()
        targets = torch.stack([torch.cat([nn.functional.one_hot(task.y_labelled, c).float(), o.targets]) for o in objectives])  # (M, N, C)
        weights = torch.stack([torch.cat([torch.ones(n_l), o.weights]) for o in objectives])  # (M, N)
        slam = [m for m, o in enumerate(objectives) if o.alpha is not None]
        debiased = [m for m, o in enumerate(objectives) if o.teacher_error is not None]

        def loss(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            logits = logits[..., 0]  # one slot per class
            per_example = -(targets[:, idx] * torch.log_softmax(logits, -1)).sum(-1)  # (M, B)
            unlabelled = idx >= n_l
            if slam and unlabelled.any():
                u = idx[unlabelled] - n_l
                mixed = torch.stack([
                    slam_loss(logits[m, unlabelled], targets[m, idx[unlabelled]], objectives[m].alpha[u], objectives[m].mask[u], objectives[m].normalise)
                    for m in slam
                ])
                per_example = per_example.clone()
                per_example[torch.tensor(slam)[:, None], unlabelled.nonzero().T] = mixed
            batch_weights = weights[:, idx]
            if debiased and unlabelled.any():
                u = idx[unlabelled] - n_l
                ratio = distortion(logits[debiased][:, unlabelled].detach(), task.teacher_unlabelled[u])  # (M', B_U)
                error = torch.stack([objectives[m].teacher_error[u] for m in debiased])
                batch_weights = batch_weights.clone()
                batch_weights[torch.tensor(debiased)[:, None], unlabelled.nonzero().T] *= debiasing_weight(error, ratio)
            return (batch_weights * per_example).sum(-1) / len(idx)

        model = StackedMLP(x.shape[1], student.hidden, c, [1] * len(objectives), seed)
        history = fit_stacked(model, loss, x, val=(task.x_val, task.y_val), config=student.train, seed=seed, progress=False)
        test = stacked_accuracy(model, task.x_test, task.y_test)
        out = [{"method": o.name, "val_accuracy": float(history.best_val_accuracy[m]), "test_accuracy": float(test[m])} for m, o in enumerate(objectives)]
        if debiased:
            ratio = distortion(stacked_class_scores(model, task.x_unlabelled)[debiased], task.teacher_unlabelled)
            for j, m in enumerate(debiased):
                out[m]["unlabelled_weights"] = debiasing_weight(objectives[m].teacher_error, ratio[j])  # the final student's weights
        return out

    return (cache or Cache()).get_or_compute("semisup_students", key, compute)
