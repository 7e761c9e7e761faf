"""Claim registries, one module per notebook.

Each module declares the notebook's claims before its run (``DECLARATIONS``, a :class:`kdlib.results.Declarations`)
and, for the records committed before graded verdicts existed, recomputes their evidence from a loaded results file
(``provisional_evidence(results) -> (evidence, gates)``; see :mod:`kdlib.results.provisional`).
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

MODULES = {
    "00_data_and_teachers": "kd_sanity",
    "01_lelp": "lelp",
    "02_slam": "slam",
    "03_weighted_distillation": "weighted",
    "04_rad": "rad",
    "05_vanilla_kd_scaling": "kd_scaling",
    "06_layernas": "layernas",
    "07_kd_variance_reduction": "kd_variance",
    "08_noisy_pseudo_labeling_graphs": "pseudo_label",
    "09_kd_zero": "kdzero",
    "10_l2t_dln": "l2t_dln",
}


def registry(notebook: str) -> ModuleType:
    """The claims module of ``notebook`` (e.g. ``"01_lelp"`` -> :mod:`kdlib.claims.lelp`).

    Raises:
        ValueError: a notebook without a claims module.
    """
    if notebook not in MODULES:
        raise ValueError(f"notebook {notebook!r} has no claims module; known: {sorted(MODULES)}")
    return import_module(f"kdlib.claims.{MODULES[notebook]}")
