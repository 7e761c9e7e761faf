"""Notebook 09 (KD-Zero): the protocol -- two teacher-student pairs, the distiller space, the searches, the final runs.

* **Pairs.** The shared Fashion-MNIST CNN teacher (32/64/128 channels) distils into a smaller CNN of the same family
  (8/16/32 channels, 32-d embedding) and, across architectures, into a one-hidden-layer MLP on the pixels.
* **Data.** A replicate (its seed) draws the students' ``n_train`` training images from the teacher's training subset
  (a small-data regime, where distillers differ); validation images (the teacher's held-out split) give the proxy
  fitness and the final runs' best step; the test split is only reported.
* **Search.** The distiller space (:data:`SLOTS`, rejected genomes removed before any training) is searched by
  regularized evolution (with crossover) and by random search through :func:`kdlib.nas.search`, ``budget`` proxy
  evaluations each. A proxy evaluation trains the pair's student briefly on the first ``proxy.n_train`` training images
  and scores its validation accuracy at the end; a batch of candidates (a generation) is one stacked run, one grid
  cell. By the engine's per-student independence a genome's fitness does not depend on the others in its stack.
* **Final.** Per pair and replicate one stacked run trains CE only, KD at T = 1 and 4, DKD, DIST and the picks of
  both searches of that replicate (same seed: same images, initialisation and batches; the searches' proxy runs use
  the same seed too, so evolution and random search are scored by the same fitness function).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import torch
from scipy import stats
from tqdm.auto import tqdm

from kdlib.cache import Cache
from kdlib.data import load
from kdlib.distill import get_objective
from kdlib.distill.kdzero import DISTANCES, REJECTIONS, TRANSFORMS, Genome, formula
from kdlib.grid import run_grid
from kdlib.models import CNNConfig
from kdlib.models.stacked import StackedCNN, StackedMLP, StudentStack
from kdlib.nas import search
from kdlib.nas.distiller_space import DistillerSlots, distiller_space, rejection_counts, rejection_table
from kdlib.nas.search import SearchResult
from kdlib.nas.space import Evaluation, SearchSpace
from kdlib.profiles import pick
from kdlib.results import Record
from kdlib.teachers import image_inputs, teacher_logits, vision_teacher
from kdlib.train import TrainConfig, TrainSet, accuracy, fit, torch_threads

VERSION = 2  # bump when a choice the cells' arguments do not name changes
DATASET = "fashion_mnist"
PILOT_SEEDS = (1000, 1001, 1002)  # the pilot's replicates: never reused in a claim
EVOLVED, RANDOM = "KD-Zero (evolution)", "random search"
STRATEGIES = {EVOLVED: "evolution", RANDOM: "random"}
# name -> objective spec: the hand-designed distillers with their usual defaults, all as CE + a distillation term
HAND_DESIGNED = {
    "CE only": {"name": "ce"},
    "KD (T = 1)": {"name": "kd_sum", "temperature": 1.0},
    "KD (T = 4)": {"name": "kd_sum", "temperature": 4.0},
    "DKD": {"name": "dkd", "alpha": 1.0, "beta": 2.0, "temperature": 1.0},
    "DIST": {"name": "dist", "beta": 1.0, "gamma": 1.0, "temperature": 1.0},
}
DISTILLERS = tuple(m for m in HAND_DESIGNED if m != "CE only")
PILOT_METHODS = {m: HAND_DESIGNED[m] for m in ("KD (T = 1)", "DIST")}  # the pilot's stand-in contrast: DIST - KD (T = 1)
METHODS = (*HAND_DESIGNED, RANDOM, EVOLVED)
# The notes' logits-branch space (§6) with the group's Auto-DAS primitives [Rel]: a normalisation, a pointwise map, a
# distance and a weight; 8 x 8 x 10 x 4 = 2,560 genomes, vanilla KD among them (nop, nop, kl_T4, 1) = KD (T = 4).
SLOTS = DistillerSlots(
    transforms=(("nop", "softmax", "softmax_T4", "log_softmax", "catt", "norm_C", "norm_N", "min_max"),
                ("nop", "abs", "pow2", "sqrt", "log", "exp", "tanh", "sigmoid")),
    distances=("kl", "kl_T4", "l1", "mse", "smooth_l1", "cosine", "pearson", "pearson_intra", "subtract", "lesser_than"),
    weights=(1.0, 5.0, 25.0, 50.0),
)


@dataclass(frozen=True)
class Student:
    """A pair's student: a stacked SmallCNN (``widths``, ``embed_dim``) or a one-hidden-layer MLP on the pixels."""

    label: str
    kind: str
    widths: tuple[int, ...] = ()
    embed_dim: int = 0
    hidden: int = 0

    def stack(self, count: int, seed: int) -> StudentStack:
        if self.kind == "cnn":
            return StackedCNN(CNNConfig(1, 10, self.widths, self.embed_dim), count, seed)
        return StackedMLP(28 * 28, self.hidden, 10, [1] * count, seed)

    def inputs(self, images: torch.Tensor) -> torch.Tensor:
        return images if self.kind == "cnn" else images.flatten(1)


PAIRS = {
    "cnn": Student("CNN → smaller CNN", "cnn", widths=(8, 16, 32), embed_dim=32),
    "mlp": Student("CNN → MLP", "mlp", hidden=128),
}


@dataclass(frozen=True)
class Run:
    """One training recipe: ``n_train`` of a replicate's images, AdamW with a cosine schedule to zero over ``epochs``;
    ``select``: validate every epoch and keep the best step (final runs), else score the last step (proxy runs)."""

    n_train: int
    epochs: int
    select: bool
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 5e-4

    def config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay, patience=None, cosine=True)


@dataclass(frozen=True)
class KDZeroSettings:
    """The numbers of one profile: pairs, data sizes, the proxy and final recipes, the searches, the replicates."""

    pairs: tuple[str, ...]
    n_train: int
    n_val: int
    n_test: int | None  # None: the whole test split
    teachers: str
    proxy: Run
    final: Run
    budget: int  # proxy evaluations per search
    population: int  # evolution's population (its first batch); random search's batch
    tournament: int
    generation: int  # children per generation (one stacked proxy run)
    crossover: float
    replicates: int

    @property
    def data(self) -> dict:
        return {"n_train": self.n_train, "n_val": self.n_val, "n_test": self.n_test, "teachers": self.teachers}


def settings(profile: str, replicates: int) -> KDZeroSettings:
    """The settings of ``profile``; ``replicates`` is the declared number (the quick profile runs 2).

    Full: 2,750 training images (5 % of the teacher's), proxy runs of 2 epochs on 1,000 of them, final runs of 8
    epochs; 24 proxy evaluations per search (evolution: a population of 8, generations of 4). Sized from a measured
    proxy generation and final run to the 30-minute budget (see the notebook's deviations).
    """
    return pick(profile, {
        "quick": KDZeroSettings(("cnn", "mlp"), 600, 300, 1000, "quick", Run(300, 1, False), Run(600, 2, True), budget=8, population=4,
                                tournament=2, generation=2, crossover=0.5, replicates=2),
        "full": KDZeroSettings(("cnn", "mlp"), 2750, 1000, None, "full", Run(1000, 2, False), Run(2750, 8, True), budget=24, population=8,
                               tournament=3, generation=4, crossover=0.5, replicates=replicates),
    })


# --- data and one stacked training run (the grid cell) -----------------------------------------------------------
@lru_cache(maxsize=16)
def training_set(seed: int, n_train: int, teachers: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Replicate ``seed``'s training images (a random draw from the teacher's training subset, in random order),
    labels and teacher logits."""
    teacher = vision_teacher(DATASET, teachers)
    train = load(DATASET, "train")
    idx = np.random.default_rng(seed).permutation(teacher.train_idx)[:n_train]
    images = image_inputs(DATASET, train.x[idx])
    return images, torch.tensor(train.y[idx]), teacher_logits(teacher, images)


@lru_cache(maxsize=2)
def evaluation_sets(n_val: int, n_test: int | None, teachers: str) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """(validation, test): the first ``n_val`` of the teacher's held-out images, and the test split (a fixed random
    ``n_test`` of it in the quick profile)."""
    teacher = vision_teacher(DATASET, teachers)
    train, test = load(DATASET, "train"), load(DATASET, "test")
    test_idx = np.arange(len(test.y)) if n_test is None else np.sort(np.random.default_rng(0).permutation(len(test.y))[:n_test])
    val_idx = teacher.val_idx[:n_val]
    return ((image_inputs(DATASET, train.x[val_idx]), torch.tensor(train.y[val_idx])),
            (image_inputs(DATASET, test.x[test_idx]), torch.tensor(test.y[test_idx])))


def train_cell(pair: str, seed: int, methods: dict[str, dict], run: dict, data: dict) -> list[dict]:
    """One grid cell: every objective of ``methods`` (label -> spec) in one stacked run of ``pair``'s student on
    replicate ``seed``; one row per method (validation accuracy, test accuracy for final runs, whether it diverged)."""
    student, recipe = PAIRS[pair], Run(**run)
    images, labels, logits = training_set(seed, data["n_train"], data["teachers"])
    (x_val, y_val), (x_test, y_test) = evaluation_sets(data["n_val"], data["n_test"], data["teachers"])
    n = recipe.n_train
    with torch_threads(1):  # small students: one thread is faster on a shared 2-core machine
        stack = student.stack(len(methods), seed)
        history = fit(stack, [get_objective(**spec) for spec in methods.values()], TrainSet(student.inputs(images[:n]), labels[:n], logits[:n]),
                      config=recipe.config(), seed=seed, val=(student.inputs(x_val), y_val) if recipe.select else None, progress=False)
        val = accuracy(stack, student.inputs(x_val), y_val, batch_size=128)
        test = accuracy(stack, student.inputs(x_test), y_test, batch_size=128) if recipe.select else np.full(len(methods), np.nan)
    loss = history.train_loss[-1][1]
    return [{"method": m, "val_accuracy": float(val[i]), "test_accuracy": float(test[i]), "diverged": bool(not np.isfinite(loss[i])),
             "best_step": int(history.best_step[i]), "seconds": history.seconds} for i, m in enumerate(methods)]


def context(chosen: KDZeroSettings) -> dict:
    """What the cells depend on beyond their arguments: the teacher, the pairs' students, the protocol version."""
    return {"teacher": vision_teacher(DATASET, chosen.teachers).key, "pairs": {k: asdict(PAIRS[k]) for k in chosen.pairs}, "version": VERSION}


def cell(pair: str, seed: int, methods: dict[str, dict], run: Run, chosen: KDZeroSettings) -> dict:
    return {"pair": pair, "seed": int(seed), "methods": methods, "run": asdict(run), "data": chosen.data}


def key(genome: Genome) -> str:
    """A genome's label in cells and tables, e.g. ``softmax+sqrt|pearson|25``."""
    return f"{'+'.join(genome.transforms)}|{genome.distance}|{genome.weight:g}"


# --- the space and the searches ---------------------------------------------------------------------------------
def rejections(pair: str, chosen: KDZeroSettings, cache: Cache | None = None) -> np.ndarray:
    """The rejection reason of every genome for ``pair`` (cached): on the pair's student at initialisation (seed 0) and
    the teacher, on the first 64 training images of replicate 0."""
    images, _, logits = training_set(0, chosen.n_train, chosen.teachers)
    student = PAIRS[pair]
    with torch.no_grad(), torch_threads(1):
        outputs = student.stack(1, 0).train()(student.inputs(images[:64]))[0]
    key_data = {"slots": SLOTS, "student": outputs, "teacher": logits[:64], "version": VERSION}
    return (cache or Cache()).get_or_compute("kdzero_rejections", key_data, lambda: rejection_table(SLOTS, outputs, logits[:64]))


def search_space(pair: str, seed: int, chosen: KDZeroSettings, log: list[pd.DataFrame] | None = None) -> SearchSpace:
    """The distiller space of ``pair`` whose evaluations are proxy runs of replicate ``seed`` (a batch: one grid cell);
    each cell's rows are appended to ``log``."""
    proxy, cells_context = chosen.proxy, context(chosen)

    def evaluate_many(genomes: list[Genome]) -> list[Evaluation]:
        methods = {key(g): g.spec() for g in genomes}
        frame = run_grid(train_cell, experiment="kdzero proxy", cells=[cell(pair, seed, methods, proxy, chosen)], context=cells_context, progress=False)
        if log is not None:
            log.append(frame[["method", "val_accuracy", "diverged", "seconds"]].assign(cell=len(log)))
        fitness = dict(zip(frame.method, frame.val_accuracy))
        return [Evaluation(fitness[key(g)], fitness[key(g)]) for g in genomes]

    return distiller_space(SLOTS, rejections(pair, chosen), evaluate_many, name=f"distillers for {PAIRS[pair].label}",
                           description=f"{proxy.epochs}-epoch proxy runs on {proxy.n_train} images")


@dataclass(frozen=True)
class SearchRun:
    """One search: its pair, method (strategy label), replicate seed, result, the genome it picked and its proxy rows."""

    pair: str
    method: str
    seed: int
    result: SearchResult
    genome: Genome
    proxy: pd.DataFrame


def run_search(pair: str, method: str, seed: int, chosen: KDZeroSettings) -> SearchRun:
    """One search of ``pair``'s distiller space with the strategy of ``method`` (:data:`STRATEGIES`)."""
    strategy = STRATEGIES[method]
    params = ({"population_size": chosen.population, "tournament_size": chosen.tournament, "batch": chosen.generation,
               "crossover_rate": chosen.crossover} if strategy == "evolution" else {"batch": chosen.population})
    log: list[pd.DataFrame] = []
    result = search(search_space(pair, seed, chosen, log), strategy, chosen.budget, seed=seed, **params)
    return SearchRun(pair, method, seed, result, SLOTS.genome(result.arch), pd.concat(log, ignore_index=True))


def run_searches(chosen: KDZeroSettings, seeds) -> list[SearchRun]:
    """Every (pair, strategy, replicate) search, with one progress bar."""
    jobs = [(pair, method, seed) for pair in chosen.pairs for seed in seeds for method in STRATEGIES]
    return [run_search(pair, method, seed, chosen) for pair, method, seed in tqdm(jobs, desc="KD-Zero searches", leave=False)]


# --- cells of the final and proxy runs of every method ---------------------------------------------------------
def final_cells(chosen: KDZeroSettings, runs: list[SearchRun]) -> list[dict]:
    """Per (pair, replicate): the hand-designed distillers and both searches' picks, one stacked final run."""
    picks = {(r.pair, r.seed, r.method): r.genome.spec() for r in runs}
    return [cell(pair, seed, {**HAND_DESIGNED, **{m: picks[pair, seed, m] for m in (RANDOM, EVOLVED)}}, chosen.final, chosen)
            for pair in chosen.pairs for seed in sorted({r.seed for r in runs})]


def hand_designed_cells(chosen: KDZeroSettings, seeds, run: Run, methods=HAND_DESIGNED) -> list[dict]:
    """Per (pair, seed): the hand-designed distillers in one stacked run of ``run`` (the proxy: for the rank
    correlation; the final recipe at the pilot seeds: the pilot)."""
    return [cell(pair, seed, dict(methods), run, chosen) for pair in chosen.pairs for seed in seeds]


# --- records and tables ---------------------------------------------------------------------------------------
def search_frame(runs: list[SearchRun]) -> pd.DataFrame:
    """One row per proxy evaluation of every search: its fitness and the best fitness so far."""
    rows = []
    for r in runs:
        best = np.maximum.accumulate(r.result.history_rewards)
        rows += [{"pair": PAIRS[r.pair].label, "method": r.method, "seed": r.seed, "evaluation": i + 1, "fitness": float(f), "best_fitness": float(b),
                  "genome": key(SLOTS.genome(a))} for i, (a, f, b) in enumerate(zip(r.result.history_archs, r.result.history_rewards, best))]
    return pd.DataFrame(rows)


def picks_table(runs: list[SearchRun], finals: pd.DataFrame) -> pd.DataFrame:
    """Every search's pick: its formula, proxy fitness and final test accuracy."""
    test = finals.set_index(["pair", "seed", "method"]).test_accuracy
    return pd.DataFrame([{"pair": PAIRS[r.pair].label, "search": r.method, "seed": r.seed, "genome": formula(r.genome),
                          "proxy fitness (%)": round(100 * r.result.reward, 1), "final test (%)": round(100 * test[r.pair, r.seed, r.method], 2)}
                         for r in runs])


def final_records(finals: pd.DataFrame, setting: str = "final") -> list[Record]:
    """Test and validation accuracy of final (or pilot) runs, one record per (pair, method, replicate, metric)."""
    return [Record(PAIRS[row.pair].label, row.method, setting, int(row.seed), metric, float(getattr(row, metric)))
            for row in finals.itertuples() for metric in ("test_accuracy", "val_accuracy")]


def proxy_records(proxies: pd.DataFrame, runs: list[SearchRun]) -> list[Record]:
    """The proxy fitness of every finally trained method: the picks' from their searches, the hand-designed
    distillers' from their own proxy runs (same proxy, same seed)."""
    records = [Record(PAIRS[row.pair].label, row.method, "proxy", int(row.seed), "proxy_fitness", float(row.val_accuracy)) for row in proxies.itertuples()]
    return records + [Record(PAIRS[r.pair].label, r.method, "proxy", r.seed, "proxy_fitness", float(r.result.reward)) for r in runs]


def rank_correlations(records: pd.DataFrame) -> pd.DataFrame:
    """Per (pair, replicate): Spearman's rho between the proxy fitness and the final test accuracy of every finally
    trained method."""
    wide = records[records.metric.isin(["proxy_fitness", "test_accuracy"])].pivot_table(index=["experiment", "seed", "method"], columns="metric", values="value")
    rows = [{"experiment": e, "seed": s, "rho": float(stats.spearmanr(g.proxy_fitness, g.test_accuracy).statistic), "methods": len(g)}
            for (e, s), g in wide.dropna().groupby(level=[0, 1])]
    return pd.DataFrame(rows)


def primitives_table() -> pd.DataFrame:
    """The space's slots and their options, rendered as formulas of ``z`` (the logits, student's or teacher's)."""
    rows = [{"slot": f"T{i + 1}", "option": name, "formula": TRANSFORMS.get(name).text.format("z")}
            for i, options in enumerate(SLOTS.transforms) for name in options]
    rows += [{"slot": "D", "option": name, "formula": DISTANCES.get(name).text.format("s̃", "t̃")} for name in SLOTS.distances]
    rows += [{"slot": "w", "option": f"{w:g}", "formula": ""} for w in SLOTS.weights]
    return pd.DataFrame(rows)


# [S] the WTTM README (notes §5): ImageNet top-1 (%) of the teacher, the student alone and each distiller
PAPER = {
    "R34 → R18 (ImageNet, paper)": {"teacher": 73.31, "CE only": 69.76, "KD (T = 1)": 70.66, "DKD": 71.70, "DIST": 72.07, EVOLVED: 72.17},
    "R50 → MobileNet (ImageNet, paper)": {"teacher": 76.16, "CE only": 68.87, "KD (T = 1)": 70.50, "DKD": 72.05, "DIST": 73.24, EVOLVED: 73.02},
}


def pair_table(chosen: KDZeroSettings) -> pd.DataFrame:
    """One row per pair: the teacher and its test accuracy, the student and its size, the data of a replicate."""
    teacher = vision_teacher(DATASET, chosen.teachers)
    n_test = chosen.n_test or len(load(DATASET, "test").y)
    return pd.DataFrame([{"pair": PAIRS[p].label, "teacher": f"{teacher.name} ({teacher.num_parameters:,} parameters)",
                          "teacher test acc (%)": round(100 * teacher.test_accuracy, 2),
                          "student parameters": sum(t.numel() for t in PAIRS[p].stack(1, 0).parameters()),
                          "training images": chosen.n_train, "proxy images": chosen.proxy.n_train, "validation": chosen.n_val, "test": n_test}
                         for p in chosen.pairs]).set_index("pair")


def paper_vs_ours(records: pd.DataFrame, teacher_accuracy: float) -> pd.DataFrame:
    """Test accuracy (%) per method: the paper's ImageNet pairs ([S]) beside ours (mean ± std over replicates)."""
    test = records[(records.metric == "test_accuracy") & (records.setting == "final")]
    ours = {pair: {m: f"{100 * g.value.mean():.2f} ± {100 * g.value.std():.2f}" for m, g in test[test.experiment == pair].groupby("method")}
            for pair in test.experiment.unique()}
    table = pd.DataFrame({**PAPER, **{f"{pair} (ours)": {"teacher": f"{100 * teacher_accuracy:.2f}", **row} for pair, row in ours.items()}})
    return table.reindex(["teacher", *METHODS]).fillna("")


def genome_formulas(runs: list[SearchRun], latex: bool = True) -> str:
    """Markdown: every search's pick as a formula (s, t: student and teacher logits), by pair and search."""
    lines = []
    for pair in dict.fromkeys(r.pair for r in runs):
        lines.append(f"**{PAIRS[pair].label}**")
        for r in sorted((r for r in runs if r.pair == pair), key=lambda r: (r.method != EVOLVED, r.seed)):
            text = f"${formula(r.genome, latex=True)}$" if latex else f"`{formula(r.genome)}`"
            lines.append(f"- {r.method}, replicate {r.seed} (proxy fitness {100 * r.result.reward:.1f} %): {text}")
    return "\n".join(lines)


def cost_table(runs: list[SearchRun], finals: pd.DataFrame) -> pd.DataFrame:
    """Training seconds of the stacked runs (one thread), as measured when each cell was computed: the searches' proxy
    runs and the final runs, per pair (mean per run and per student)."""
    proxy = pd.concat([r.proxy.assign(pair=r.pair, seed=r.seed, search=r.method) for r in runs]).groupby(["pair", "seed", "search", "cell"])
    final = finals.groupby(["pair", "seed"])
    runs_of = {"proxy": pd.DataFrame({"seconds": proxy.seconds.first(), "students": proxy.size()}),
               "final": pd.DataFrame({"seconds": final.seconds.first(), "students": final.size()})}
    rows = [{"pair": PAIRS[pair].label, "run": kind, "stacked runs": len(g), "students per run": g.students.mean(), "seconds per run": g.seconds.mean(),
             "seconds per student": (g.seconds / g.students).mean()}
            for kind, frame in runs_of.items() for pair, g in frame.groupby(level="pair")]
    return pd.DataFrame(rows).set_index(["pair", "run"]).round(2)


def rejection_audit(chosen: KDZeroSettings, runs: list[SearchRun]) -> dict:
    """What the rejection control reads: genomes per outcome and pair, evaluated genomes, evaluated genomes that were
    rejected ones (none, if the wiring is right) and evaluated genomes whose proxy run diverged."""
    tables = {pair: rejections(pair, chosen) for pair in chosen.pairs}
    evaluated = [(r.pair, arch) for r in runs for arch in r.result.history_archs]
    return {"counts": {PAIRS[pair].label: rejection_counts(table) for pair, table in tables.items()}, "evaluated": len(evaluated),
            "evaluated_rejected": sum(tables[pair][arch] != "" for pair, arch in evaluated),
            "diverged": int(sum(r.proxy.diverged.sum() for r in runs))}


def rejected_examples(pair: str, chosen: KDZeroSettings, per_reason: int = 3) -> pd.DataFrame:
    """The first ``per_reason`` rejected genomes of each reason (in index order), as formulas."""
    table = rejections(pair, chosen)
    rows = [{"reason": reason, "genome": formula(SLOTS.genome(np.unravel_index(flat, table.shape)))}
            for reason in REJECTIONS for flat in np.flatnonzero(table.ravel() == reason)[:per_reason]]
    return pd.DataFrame(rows)


def rejection_summary(chosen: KDZeroSettings) -> pd.DataFrame:
    """Genomes accepted and rejected (by reason) per pair."""
    return pd.DataFrame({PAIRS[pair].label: rejection_counts(rejections(pair, chosen)) for pair in chosen.pairs}).T
