"""KD-Zero's distiller space (notebook 09) as a layer-wise :class:`~kdlib.nas.space.SearchSpace`, one layer per genome slot.

A genome (:class:`kdlib.distill.kdzero.Genome`) is an architecture here: the transform slots in order, the distance and
the weight are its layers, so random search and regularized evolution (:mod:`kdlib.nas.baselines`) search it through
:func:`kdlib.nas.search`. Loss rejection runs before any training, on every genome of the space: a rejected genome is
an invalid architecture (cost ``inf``), so no strategy ever samples, mutates into or evaluates one. Valid genomes cost
0 (a distiller does not change the student's cost).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from kdlib.distill.kdzero import DISTANCES, REJECTIONS, TRANSFORMS, Genome, rejection
from kdlib.nas.space import Arch, Evaluation, Layer, SearchSpace
from kdlib.train import torch_threads


@dataclass(frozen=True)
class DistillerSlots:
    """The options of every genome slot: each transform slot's primitives (applied in order), distances, weights."""

    transforms: tuple[tuple[str, ...], ...]
    distances: tuple[str, ...]
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.transforms or not self.distances or not self.weights:
            raise ValueError(f"a distiller space needs transform slots, distances and weights, got {self}")
        for name in itertools.chain(*self.transforms):
            TRANSFORMS.get(name)
        for name in self.distances:
            DISTANCES.get(name)
        if min(self.weights) <= 0:
            raise ValueError(f"weights must be > 0, got {self.weights}")

    def layers(self) -> tuple[Layer, ...]:
        """``T1..Tk``, ``D`` and ``w``, each with its options."""
        return (*(Layer(f"T{i + 1}", options) for i, options in enumerate(self.transforms)), Layer("D", self.distances),
                Layer("w", tuple(f"{w:g}" for w in self.weights)))

    @property
    def shape(self) -> tuple[int, ...]:
        return (*(len(options) for options in self.transforms), len(self.distances), len(self.weights))

    def genome(self, arch: Sequence[int]) -> Genome:
        """The genome of architecture ``arch`` (one option index per slot)."""
        *transforms, distance, weight = (int(a) for a in arch)
        return Genome(tuple(options[i] for options, i in zip(self.transforms, transforms)), self.distances[distance], self.weights[weight])

    def arch(self, genome: Genome) -> Arch:
        """The architecture of ``genome``; a ``ValueError`` if one of its primitives is not an option of its slot."""
        if len(genome.transforms) != len(self.transforms):
            raise ValueError(f"this space has {len(self.transforms)} transform slots, the genome {len(genome.transforms)}")
        try:
            return (*(options.index(name) for options, name in zip(self.transforms, genome.transforms)), self.distances.index(genome.distance),
                    self.weights.index(genome.weight))
        except ValueError:
            raise ValueError(f"genome {genome} is not in this space") from None


def rejection_table(slots: DistillerSlots, student: torch.Tensor, teacher: torch.Tensor) -> np.ndarray:
    """Every genome's rejection reason ('' if accepted), shaped like the space, on one batch of student logits at
    initialisation and the teacher's logits of the same examples (see :func:`kdlib.distill.kdzero.rejection`)."""
    reasons = np.empty(slots.shape, dtype=object)
    with torch_threads(1):  # thousands of kernels on (B, K) tensors: two threads stall on each (10x slower, measured)
        for index in np.ndindex(*slots.shape):
            reasons[index] = rejection(slots.genome(index), student, teacher) or ""
    return reasons


def rejection_counts(reasons: np.ndarray) -> dict[str, int]:
    """Genomes per outcome: ``accepted`` and each of :data:`~kdlib.distill.kdzero.REJECTIONS`."""
    return {"accepted": int((reasons == "").sum()), **{reason: int((reasons == reason).sum()) for reason in REJECTIONS}}


def distiller_space(slots: DistillerSlots, reasons: np.ndarray, evaluate_many: Callable[[list[Genome]], list[Evaluation]],
                    name: str = "distillers", description: str = "") -> SearchSpace:
    """The space of ``slots`` without the rejected genomes (``reasons`` from :func:`rejection_table`).

    ``evaluate_many(genomes)`` scores a batch of genomes (e.g. one stacked proxy run); single evaluations go through it.
    """
    if reasons.shape != slots.shape:
        raise ValueError(f"reasons must have the space's shape {slots.shape}, got {reasons.shape}")
    costs = np.where(reasons == "", 0.0, np.inf)

    def many(archs: Sequence[Arch]) -> list[Evaluation]:
        return list(evaluate_many([slots.genome(arch) for arch in archs]))

    return SearchSpace(name, slots.layers(), costs, lambda arch: many([arch])[0], cost_name="rejected (inf)", description=description,
                       evaluate_many=many)
