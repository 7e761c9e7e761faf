"""Notebook 07 (knowledge distillation as partial variance reduction): the protocol of its three experiments.

**E1, strongly convex (core).** L2-regularised multinomial logistic regression ``F(x) = mean CE + (mu/2)||x||^2`` on
whitened principal components of real images. Teachers share the student's architecture and the student's ``F``:
the exact optimum (L-BFGS to a gradient norm below 1e-8), k-step full-batch gradient-descent teachers of decreasing
quality, and the optimum of the same objective on a disjoint half of the data. Every method trains in one stack on
the same batches from the same (zero) start at one constant SGD rate (the engine's ``weight_decay`` is mu): SGD; the
distillation gradient at each lambda of the grid; the standard KD loss; the distillation gradient plus the teacher's
full gradient (SVRG anchored at the teacher); lambda decay (x0.9 per epoch); classic SVRG (student snapshots). A
replicate redraws the batch order. The measure is the *noise floor*: the mean of ``F(x_t) - F*`` over the evaluations
from epoch ``floor_from`` on, on a log10 scale.

**E2 / E3, deep linear and non-convex.** A deep linear network (E2) and the official MNIST script's 1-hidden-layer
ReLU MLP (E3), SGD vs the standard KD loss (lambda = 0.7, T = 1) from a teacher of the same architecture trained
longer: per epoch the cosine between the KD gradient and the surrogate ``grad CE_B(x) - lam grad CE_B(theta)``
(``measure_grad_similarity_standard``), the training loss and the gradient noise (variance of the per-example
gradients of each method's own loss on a fixed probe set) at the iterate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.optimize
import torch
import torch.nn.functional as F
from torch import nn

from kdlib.cache import Cache
from kdlib.data import data_version, load
from kdlib.distill import get_objective
from kdlib.distill.variance import DistillationGradient, NoiseAtOptimum, Rule, kd_and_surrogate, noise_at_optimum, per_example_gradients
from kdlib.models.linear import StackedDeepLinear, StackedLinear
from kdlib.models.stacked import StackedMLP
from kdlib.profiles import pick
from kdlib.results import Record
from kdlib.train import Batch, TrainConfig, TrainSet, UpdateContext, default_update, fit, torch_threads

VERSION = 1
LAMBDAS = (0.1, 0.25, 0.5, 0.75, 1.0)
KD_LAMBDA = 0.75  # standard KD loss and lambda decay: the grid point nearest the official default (lbda = 0.7)
NET_LAMBDA = 0.7  # E2 / E3: the official MNIST MLP script's lbda
PILOT_SEEDS = (1000, 1001, 1002)  # the pilot's replicates: never reused in a claim
OPTIMUM, OTHER_HALF, NO_TEACHER = "optimum", "other half", "none"
SGD, SVRG, KD_LOSS, KD_FULL, KD_DECAY = "SGD", "SVRG", "KD loss", "KD-grad + full grad", "KD-grad, lambda decay"


def kd_grad(lam: float) -> str:
    """The method name of the distillation gradient at ``lam``."""
    return f"KD-grad lam={lam:g}"




# ----------------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ConvexSpec:
    """E1's data and objective: ``n_train`` images (and a disjoint ``n_train`` for the other-half teacher), their
    first ``components`` principal components whitened, L2 ``l2``, gradient-descent teachers after ``gd_steps``."""

    dataset: str
    n_train: int
    components: int
    l2: float
    gd_steps: tuple[int, ...]
    data_seed: int = 0

    def __post_init__(self) -> None:
        if self.n_train < 10 or self.components < 1 or self.l2 <= 0 or not self.gd_steps or min(self.gd_steps) < 1:
            raise ValueError(f"invalid convex problem {self}: need n_train >= 10, components >= 1, l2 > 0 (strong convexity) and gd_steps >= 1")


@dataclass(frozen=True)
class ConvexRun:
    """E1's optimisation: plain SGD at a constant ``lr``; ``F - F*`` evaluated ``evals_per_epoch`` times an epoch; the
    floor averages the evaluations from epoch ``floor_from``; SVRG snapshots at epochs ``svrg[0] + k svrg[1]``."""

    batch_size: int
    lr: float
    epochs: int
    evals_per_epoch: int
    floor_from: int
    lambdas: tuple[float, ...] = LAMBDAS
    kd_lambda: float = KD_LAMBDA
    decay: float = 0.9
    svrg: tuple[int, int] = (1, 2)  # the official start_svrg = 2, svrg_switch = 2 (1-based epochs)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"the learning rate must be > 0, got {self.lr}")
        if not 0 <= self.floor_from < self.epochs or self.evals_per_epoch < 1 or self.batch_size < 1:
            raise ValueError(f"invalid run {self}: need 0 <= floor_from < epochs, evals_per_epoch >= 1, batch_size >= 1")
        for lam in (*self.lambdas, self.kd_lambda):
            Rule(lam)  # the same clear error for a lambda outside [0, 1]


@dataclass(frozen=True)
class NetRun:
    """E2 / E3: ``kind`` "deep_linear" (on E1's whitened features) or "mlp" (the official 1-hidden-layer ReLU MLP on
    normalised pixels); SGD at ``lr`` with ``weight_decay``; the KD student uses the standard loss at ``lam``, T = 1;
    the teacher trains ``teacher_epochs`` (AdamW); the cosine is probed every ``probe_every`` steps, the gradient
    noise on ``probe_examples`` fixed training examples."""

    kind: str
    dataset: str
    n_train: int
    hidden: tuple[int, ...]
    lr: float
    weight_decay: float
    batch_size: int
    epochs: int
    teacher_epochs: int
    components: int = 0
    lam: float = NET_LAMBDA
    probe_every: int = 1
    probe_examples: int = 256
    data_seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("deep_linear", "mlp"):
            raise ValueError(f"kind must be 'deep_linear' or 'mlp', got {self.kind!r}")
        if self.kind == "deep_linear" and self.components < 1:
            raise ValueError("a deep linear run works on whitened components: give components >= 1")
        if self.lr <= 0:
            raise ValueError(f"the learning rate must be > 0, got {self.lr}")
        Rule(self.lam)


@dataclass(frozen=True)
class VarianceSettings:
    """The numbers of one profile."""

    problem: ConvexSpec
    convex: ConvexRun
    deep: NetRun
    mlp: NetRun
    convex_replicates: int
    net_replicates: int
    pilot_seeds: tuple[int, ...] = PILOT_SEEDS


def settings(profile: str, convex_replicates: int, net_replicates: int) -> VarianceSettings:
    """The settings of ``profile``; the replicates of E1 and of E2 / E3 are the declared numbers (the quick profile runs 2)."""
    problem = pick(profile, {
        "quick": ConvexSpec("digits", 719, 40, 1e-2, gd_steps=(30, 3)),
        "full": ConvexSpec("fashion_mnist", 10_000, 100, 1e-2, gd_steps=(30, 10, 3)),
    })
    convex = pick(profile, {
        "quick": ConvexRun(batch_size=16, lr=0.5, epochs=4, evals_per_epoch=2, floor_from=1, lambdas=(0.25, 0.75, 1.0)),
        "full": ConvexRun(batch_size=64, lr=1.0, epochs=6, evals_per_epoch=4, floor_from=2),
    })
    deep = pick(profile, {
        "quick": NetRun("deep_linear", "digits", 719, (32,), lr=0.05, weight_decay=1e-4, batch_size=10, epochs=2, teacher_epochs=20,
                        components=40, probe_every=2, probe_examples=64),
        "full": NetRun("deep_linear", "fashion_mnist", 5_000, (32,), lr=0.05, weight_decay=1e-4, batch_size=10, epochs=4, teacher_epochs=20,
                       components=100, probe_every=5, probe_examples=128),
    })
    mlp = pick(profile, {
        "quick": NetRun("mlp", "digits", 719, (100,), lr=0.01, weight_decay=1e-4, batch_size=10, epochs=2, teacher_epochs=20, probe_every=2,
                        probe_examples=64),
        "full": NetRun("mlp", "fashion_mnist", 5_000, (100,), lr=0.01, weight_decay=1e-4, batch_size=10, epochs=4, teacher_epochs=20,
                       probe_every=5, probe_examples=128),
    })
    return VarianceSettings(problem, convex, deep, mlp, pick(profile, {"quick": 2, "full": convex_replicates}),
                            pick(profile, {"quick": 2, "full": net_replicates}),
                            pick(profile, {"quick": PILOT_SEEDS[:2], "full": PILOT_SEEDS}))


# ------------------------------------------------------------------------------------------- E1: data, teachers


def _subsets(dataset: str, n_train: int, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two disjoint random training subsets of ``n_train`` images: the student's and the other-half teacher's."""
    total = len(load(dataset, "train").y)
    if 2 * n_train > total:
        raise ValueError(f"{dataset} has {total} training images: cannot draw two disjoint subsets of {n_train}")
    order = np.random.default_rng(data_seed).permutation(total)
    return order[:n_train], order[n_train:2 * n_train]


def _pixels(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    data = load(dataset, split)
    return data.x.reshape(len(data.y), -1).astype(np.float64) / 255.0, data.y.astype(np.int64)


def whiten(train: np.ndarray, components: int, *others: np.ndarray) -> list[np.ndarray]:
    """Project on the first ``components`` principal axes of ``train`` and scale each to unit variance on ``train``.

    Raises:
        ValueError: more components than ``train`` has non-degenerate directions.
    """
    mean = train.mean(0)
    centred = torch.from_numpy(train - mean)
    variances, axes = torch.linalg.eigh(centred.T @ centred / len(train))  # ascending
    variances, axes = variances.flip(0)[:components].numpy(), axes.flip(1)[:, :components].numpy()
    if len(variances) < components or variances[-1] < 1e-12 * variances[0]:
        raise ValueError(f"cannot whiten {components} components: the training data has only {int((variances > 1e-12 * variances[0]).sum())}")
    projection = axes / np.sqrt(variances)
    return [(x - mean) @ projection for x in (train, *others)]


def objective(params: list[torch.Tensor], x: torch.Tensor, y: torch.Tensor, l2: float) -> torch.Tensor:
    """``F(W, b) = mean CE(x W + b, y) + (l2 / 2)(||W||^2 + ||b||^2)``."""
    weight, bias = params
    return F.cross_entropy(x @ weight + bias, y) + 0.5 * l2 * (weight.square().sum() + bias.square().sum())


def smoothness(x: torch.Tensor, l2: float) -> float:
    """An upper bound on the smoothness of ``F``: ``lambda_max([x, 1]^T [x, 1] / n) / 2 + l2`` (the softmax
    cross-entropy's Hessian in the logits is at most 1/2)."""
    design = torch.cat([x, torch.ones(len(x), 1, dtype=x.dtype)], 1)
    return float(torch.linalg.eigvalsh(design.T @ design / len(x)).max()) / 2 + l2


def check_learning_rate(lr: float, smooth: float) -> None:
    """Constant-rate (S)GD on an L-smooth objective diverges for ``lr >= 2 / L``: refuse such a rate up front."""
    if not 0 < lr < 2 / smooth:
        raise ValueError(f"the learning rate must be in (0, 2/L) = (0, {2 / smooth:.3g}) for this problem (L = {smooth:.3g}), got {lr}")


def lbfgs_optimum(x: torch.Tensor, y: torch.Tensor, l2: float, classes: int) -> list[torch.Tensor]:
    """The minimiser of :func:`objective` by L-BFGS (scipy), polished until the gradient norm is below 1e-8."""
    d = x.shape[1]

    def value_and_grad(flat: np.ndarray) -> tuple[float, np.ndarray]:
        params = [torch.tensor(flat[: d * classes].reshape(d, classes), requires_grad=True), torch.tensor(flat[d * classes:], requires_grad=True)]
        value = objective(params, x, y, l2)
        grads = torch.autograd.grad(value, params)
        return float(value.detach()), torch.cat([g.flatten() for g in grads]).numpy()

    result = scipy.optimize.minimize(value_and_grad, np.zeros(d * classes + classes), jac=True, method="L-BFGS-B",
                                     options={"maxiter": 10_000, "gtol": 1e-12, "ftol": 0.0, "maxcor": 30})
    flat = result.x
    params = [torch.tensor(flat[: d * classes].reshape(d, classes)), torch.tensor(flat[d * classes:])]
    norm = float(np.linalg.norm(value_and_grad(flat)[1]))
    if norm > 1e-8:
        raise RuntimeError(f"L-BFGS stopped at a gradient norm of {norm:.2e} (> 1e-8): {result.message}")
    return params


def gd_teacher(x: torch.Tensor, y: torch.Tensor, l2: float, classes: int, steps: int, lr: float) -> list[torch.Tensor]:
    """``steps`` full-batch gradient-descent steps of rate ``lr`` on :func:`objective` from zero."""
    params = [torch.zeros(x.shape[1], classes, dtype=x.dtype, requires_grad=True), torch.zeros(classes, dtype=x.dtype, requires_grad=True)]
    for _ in range(steps):
        grads = torch.autograd.grad(objective(params, x, y, l2), params)
        params = [(p - lr * g).detach().requires_grad_(True) for p, g in zip(params, grads)]
    return [p.detach() for p in params]


@dataclass
class ConvexProblem:
    """E1's data and teachers: whitened features (float64), the exact optimum's value ``f_star``, the smoothness bound,
    and every teacher's parameters ``[W (d, K), b (K)]`` by name (best first)."""

    spec: ConvexSpec
    x: torch.Tensor
    y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    f_star: float
    smooth: float
    teachers: dict[str, list[torch.Tensor]] = field(default_factory=dict)

    @property
    def classes(self) -> int:
        return int(self.y.max()) + 1

    def module(self, params: list[torch.Tensor]) -> nn.Module:
        """A standalone linear model (``nn.Sequential(nn.Linear)``, float64) with the given parameters."""
        stack = StackedLinear(self.x.shape[1], self.classes, 1, seed=0)
        stack.load_student(0, params)
        return stack.student(0)

    def value(self, params: list[torch.Tensor]) -> float:
        return float(objective(params, self.x, self.y, self.spec.l2))


def gd_teacher_name(steps: int) -> str:
    """The name of the gradient-descent teacher after ``steps`` steps."""
    return f"GD-{steps}"


def _build_problem(spec: ConvexSpec) -> dict:
    student, other = _subsets(spec.dataset, spec.n_train, spec.data_seed)
    pixels, labels = _pixels(spec.dataset, "train")
    test_pixels, test_labels = _pixels(spec.dataset, "test")
    x, x_other, x_test = (torch.from_numpy(a) for a in whiten(pixels[student], spec.components, pixels[other], test_pixels))
    y, y_other = torch.from_numpy(labels[student]), torch.from_numpy(labels[other])
    classes = int(labels.max()) + 1
    smooth = smoothness(x, spec.l2)
    teachers = {OPTIMUM: lbfgs_optimum(x, y, spec.l2, classes)}
    for steps in sorted(spec.gd_steps, reverse=True):
        teachers[gd_teacher_name(steps)] = gd_teacher(x, y, spec.l2, classes, steps, 1.0 / smooth)
    teachers[OTHER_HALF] = lbfgs_optimum(x_other, y_other, spec.l2, classes)
    return {"x": x, "y": y, "x_test": x_test, "y_test": torch.from_numpy(test_labels), "smooth": smooth, "teachers": teachers}


@lru_cache(maxsize=4)
def convex_problem(spec: ConvexSpec) -> ConvexProblem:
    """E1's problem of ``spec`` (built on first use, then loaded from the cache)."""
    key = {"spec": spec, "data": data_version(spec.dataset), "version": VERSION}
    with torch_threads(1):
        built = Cache().get_or_compute("kd-variance-problem", key, lambda: _build_problem(spec))
    problem = ConvexProblem(spec, built["x"], built["y"], built["x_test"], built["y_test"], 0.0, built["smooth"], built["teachers"])
    problem.f_star = problem.value(problem.teachers[OPTIMUM])
    return problem


def noise_by_teacher(problem: ConvexProblem) -> dict[str, NoiseAtOptimum]:
    """The exact noise at the optimum of every teacher's distillation gradient, from every example's gradient."""
    optimum = problem.module(problem.teachers[OPTIMUM])
    with torch_threads(1):
        return {name: noise_at_optimum(optimum, problem.module(params), problem.x, problem.y, problem.spec.l2)
                for name, params in problem.teachers.items()}


def teacher_table(problem: ConvexProblem, noise: dict[str, NoiseAtOptimum]) -> pd.DataFrame:
    """Per teacher: its suboptimality, gradient norm, accuracy, and the exact noise at the optimum (per example):
    sigma^2(0) (SGD), lambda* and sigma^2(lambda*), sigma^2(1), and lambda* with the full-gradient correction."""
    rows = []
    with torch_threads(1):
        for name, params in problem.teachers.items():
            module, tensors, moments = problem.module(params), [p.clone().requires_grad_(True) for p in params], noise[name]
            gradient = torch.autograd.grad(objective(tensors, problem.x, problem.y, problem.spec.l2), tensors)
            with torch.no_grad():
                train, test = ((module(x).argmax(1) == y).double().mean().item() for x, y in ((problem.x, problem.y), (problem.x_test, problem.y_test)))
            rows.append({"teacher": name, "F - F*": problem.value(params) - problem.f_star, "|grad F|": float(torch.cat([g.flatten() for g in gradient]).norm()),
                         "train accuracy": train, "test accuracy": test, "sigma2(0)": moments.sigma2(0.0), "lambda*": moments.lambda_star,
                         "sigma2(lambda*)": moments.sigma2(moments.lambda_star), "sigma2(1)": moments.sigma2(1.0),
                         "lambda* (+ full grad)": moments.centered().lambda_star})
    return pd.DataFrame(rows).set_index("teacher")


def sigma2_curves(noise: dict[str, NoiseAtOptimum], lambdas: np.ndarray) -> pd.DataFrame:
    """sigma^2(lambda) at the optimum for every teacher, with and without the full-gradient correction (long form)."""
    rows = []
    for name, moments in noise.items():
        for variant, curve in (("distillation gradient", moments), ("+ full gradient", moments.centered())):
            rows += [{"teacher": name, "variant": variant, "lambda": float(lam), "sigma2": float(curve.sigma2(lam)), "lambda*": curve.lambda_star}
                     for lam in lambdas]
    return pd.DataFrame(rows)


def identity_gap(problem: ConvexProblem, lambdas: tuple[float, ...], batch_size: int, batches: int, seed: int) -> float:
    """The largest ``|grad KD_B(x) - (grad CE_B(x) - lam grad CE_B(theta))|`` over every non-optimal teacher, every
    ``lam`` and ``batches`` random batches, at a student drawn at random (the identity says 0)."""
    generator = torch.Generator().manual_seed(seed)
    student = problem.module([torch.randn(problem.x.shape[1], problem.classes, generator=generator, dtype=torch.float64) * 0.1,
                              torch.zeros(problem.classes, dtype=torch.float64)])
    gap = 0.0
    with torch_threads(1):
        for name, params in problem.teachers.items():
            if name == OPTIMUM:
                continue
            teacher = problem.module(params)
            for lam in lambdas:
                for _ in range(batches):
                    idx = torch.randint(len(problem.y), (batch_size,), generator=generator)
                    kd, surrogate = kd_and_surrogate(student, teacher, problem.x[idx], problem.y[idx], lam)
                    gap = max(gap, float((kd - surrogate).abs().max()))
    return gap


# ----------------------------------------------------------------------------------------------- E1: training


@dataclass(frozen=True)
class Student:
    """One student of E1's stack: its teacher, method name, nominal lambda, gradient rule and loss."""

    teacher: str
    method: str
    lam: float
    rule: Rule
    loss: str = "ce"  # "ce" (the rule forms the gradient) or "kd" (the standard KD loss at ``lam``)


def convex_students(teachers: list[str], run: ConvexRun) -> list[Student]:
    """SGD and classic SVRG once, then for every teacher: the distillation gradient at each lambda, the standard KD
    loss, the distillation gradient + full gradient at lambda = 1 and lambda decay."""
    students = [Student(NO_TEACHER, SGD, 0.0, Rule()), Student(NO_TEACHER, SVRG, 1.0, Rule(1.0, full=True, svrg=run.svrg))]
    for teacher in teachers:
        students += [Student(teacher, kd_grad(lam), lam, Rule(lam)) for lam in run.lambdas]
        students += [Student(teacher, KD_LOSS, run.kd_lambda, Rule(), loss="kd"), Student(teacher, KD_FULL, 1.0, Rule(1.0, full=True)),
                     Student(teacher, KD_DECAY, run.kd_lambda, Rule(run.kd_lambda, decay=run.decay))]
    return students


@dataclass(frozen=True)
class WithTeacher:
    """An objective whose teacher logits come from the training set's field ``name`` (one teacher per student)."""

    objective: object
    name: str

    def __call__(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.objective(outputs, replace(batch, teacher=batch.fields[self.name]))


def _objective(student: Student):
    if student.loss == "kd":
        return WithTeacher(get_objective("kd", temperature=1.0, alpha=student.lam), student.teacher)
    return get_objective("ce")


def stack_values(stack: StackedLinear, x: torch.Tensor, y: torch.Tensor, l2: float) -> torch.Tensor:
    """``F(x_m)`` of every student of a linear stack: (M,)."""
    with torch.no_grad():
        logits = stack(x)
        ce = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(logits)), reduction="none").view(len(logits), -1).mean(1)
        return ce + 0.5 * l2 * sum(p.square().flatten(1).sum(1) for p in stack.parameters())


def convex_cell(problem: dict, run: dict, seed: int) -> list[dict]:
    """One grid cell of E1: every method and teacher in one stack on one batch order; one row per student."""
    spec, chosen = ConvexSpec(**{**problem, "gd_steps": tuple(problem["gd_steps"])}), ConvexRun(**run)
    data = convex_problem(spec)
    check_learning_rate(chosen.lr, data.smooth)
    students = convex_students([t for t in data.teachers], chosen)
    d, k, n = data.x.shape[1], data.classes, len(data.y)
    config = TrainConfig(epochs=chosen.epochs, batch_size=chosen.batch_size, lr=chosen.lr, weight_decay=spec.l2, patience=None, optimizer="sgd")
    steps_per_epoch = config.steps_per_epoch(n)
    every = max(1, steps_per_epoch // chosen.evals_per_epoch)
    with torch_threads(1):
        stack = StackedLinear(d, k, len(students), seed, init="zeros")
        anchors = StackedLinear(d, k, len(students), seed, init="zeros")
        for m, student in enumerate(students):
            if student.teacher != NO_TEACHER:
                anchors.load_student(m, data.teachers[student.teacher])
        fields = {name: data.module(params)(data.x).detach() for name, params in data.teachers.items()}
        update = DistillationGradient(anchors, [s.rule for s in students], data.x, data.y, spec.l2, steps_per_epoch)
        curve, epochs = [stack_values(stack, data.x, data.y, spec.l2) - data.f_star], [0.0]

        def record(state) -> None:
            if state.step % every == 0:
                values = stack_values(state.stack, data.x, data.y, spec.l2) - data.f_star
                if not torch.isfinite(values).all():
                    raise FloatingPointError(f"training diverged at lr={chosen.lr}: use a smaller learning rate")
                curve.append(values)
                epochs.append(state.step / steps_per_epoch)

        fit(stack, [_objective(s) for s in students], TrainSet(data.x, data.y, fields=fields), config=config, seed=seed, update=update,
            on_step=record, progress=False, device="cpu")
        with torch.no_grad():
            test = (stack(data.x_test).argmax(-1) == data.y_test).double().mean(1)
    values = torch.stack(curve).numpy()  # (evaluations, M)
    late = np.asarray(epochs) >= chosen.floor_from
    return [{"teacher": s.teacher, "method": s.method, "lam": s.lam, "floor": float(values[late, m].mean()),
             "log10_floor": float(np.log10(max(values[late, m].mean(), 1e-300))), "test_accuracy": float(test[m]),
             "epochs": list(epochs), "suboptimality": values[:, m].tolist()} for m, s in enumerate(students)]


def convex_cells(chosen: VarianceSettings, seeds) -> list[dict]:
    """E1's grid: one cell per replicate seed."""
    return [{"problem": asdict(chosen.problem), "run": asdict(chosen.convex), "seed": int(seed)} for seed in seeds]


def context(chosen: VarianceSettings) -> dict:
    """What the cells depend on beyond their arguments."""
    return {"data": data_version(chosen.problem.dataset), "version": VERSION}


# --------------------------------------------------------------------------------------------- E2 / E3 (nets)


def _net_data(run: NetRun) -> tuple[torch.Tensor, torch.Tensor]:
    student, _ = _subsets(run.dataset, run.n_train, run.data_seed)
    pixels, labels = _pixels(run.dataset, "train")
    if run.kind == "deep_linear":
        x = torch.from_numpy(whiten(pixels[student], run.components)[0])
    else:  # the official transform: ToTensor + Normalize(mean, std) with the training pixels' statistics
        x = torch.from_numpy(pixels[student]).float()
        x = (x - x.mean()) / x.std()
    return x, torch.from_numpy(labels[student])


def _net_stack(run: NetRun, count: int, seed: int, in_dim: int, classes: int) -> nn.Module:
    if run.kind == "deep_linear":
        return StackedDeepLinear(in_dim, classes, count, seed, hidden=run.hidden)
    return StackedMLP(in_dim, run.hidden[0], classes, [1] * count, seed)


def _train_net_teacher(run: NetRun) -> dict:
    x, y = _net_data(run)
    stack = _net_stack(run, 1, 12345, x.shape[1], int(y.max()) + 1)
    config = TrainConfig(epochs=run.teacher_epochs, batch_size=64, lr=1e-3, weight_decay=run.weight_decay, patience=None)
    fit(stack, get_objective("ce"), TrainSet(x, y), config=config, seed=12345, progress=False, device="cpu")
    return {name: tensor.detach().clone() for name, tensor in stack.student(0).state_dict().items()}


@lru_cache(maxsize=4)
def net_teacher(run: NetRun) -> nn.Module:
    """The teacher of a net run: the student's architecture trained ``teacher_epochs`` with AdamW (cached)."""
    key = {"kind": run.kind, "dataset": run.dataset, "n_train": run.n_train, "hidden": run.hidden, "components": run.components,
           "weight_decay": run.weight_decay, "epochs": run.teacher_epochs, "data": data_version(run.dataset), "version": VERSION}
    with torch_threads(1):
        state = Cache().get_or_compute("kd-variance-net-teacher", key, lambda: _train_net_teacher(run))
    x, y = _net_data(run)
    module = _net_stack(run, 1, 0, x.shape[1], int(y.max()) + 1).student(0)
    module.load_state_dict(state)
    return module.eval()


def gradient_noise(model: nn.Module, x: torch.Tensor, targets: torch.Tensor) -> float:
    """The variance of the per-example gradients of ``CE(model(a_i), targets_i)``: ``mean_i ||g_i - mean g||^2``."""
    grads = per_example_gradients(model, x, targets, 0.0)
    return float((grads - grads.mean(0)).square().sum(1).mean())


class ProbedUpdate:
    """The default update, after measuring the cosine between student ``index``'s KD gradient and its surrogate on
    the batch (every ``every`` steps)."""

    def __init__(self, teacher: nn.Module, index: int, lam: float, every: int) -> None:
        self.teacher, self.index, self.lam, self.every = teacher, index, lam, every
        self.cosines: list[tuple[int, float]] = []

    def __call__(self, context: UpdateContext) -> None:
        if context.batch.step % self.every == 0:
            student = context.stack.student(self.index)
            kd, surrogate = kd_and_surrogate(student, self.teacher, context.inputs, context.batch.labels, self.lam)
            self.cosines.append((context.batch.step, float(F.cosine_similarity(kd, surrogate, dim=0))))
        default_update(context)


def net_cell(run: dict, seed: int) -> list[dict]:
    """One grid cell of E2 / E3: SGD and standard KD students in one stack; one row per epoch (0 = the start)."""
    chosen = NetRun(**{**run, "hidden": tuple(run["hidden"])})
    teacher = net_teacher(chosen)
    x, y = _net_data(chosen)
    classes = int(y.max()) + 1
    config = TrainConfig(epochs=chosen.epochs, batch_size=chosen.batch_size, lr=chosen.lr, weight_decay=chosen.weight_decay, patience=None,
                         optimizer="sgd")
    steps_per_epoch = config.steps_per_epoch(len(y))
    probe = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))[: chosen.probe_examples]
    with torch_threads(1):
        with torch.no_grad():
            teacher_logits = teacher(x)
        kd_targets = (1 - chosen.lam) * F.one_hot(y, classes).to(x.dtype) + chosen.lam * F.softmax(teacher_logits, 1)
        stack = _net_stack(chosen, 2, seed, x.shape[1], classes)
        update = ProbedUpdate(teacher, 1, chosen.lam, chosen.probe_every)
        rows = []

        def measure(epoch: int, model: nn.Module) -> None:
            with torch.no_grad():
                logits = model(x)
            losses = F.cross_entropy(logits.flatten(0, 1), y.repeat(2), reduction="none").view(2, -1).mean(1)
            sgd, kd = model.student(0), model.student(1)
            rows.append({"epoch": epoch, "train_loss_sgd": float(losses[0]), "train_loss_kd": float(losses[1]),
                         "noise_sgd": gradient_noise(sgd, x[probe], y[probe]), "noise_kd": gradient_noise(kd, x[probe], kd_targets[probe])})

        measure(0, stack)
        objectives = [get_objective("ce"), get_objective("kd", temperature=1.0, alpha=chosen.lam)]
        fit(stack, objectives, TrainSet(x, y, teacher=teacher_logits), config=config, seed=seed, update=update, progress=False, device="cpu",
            on_step=lambda state: measure(state.step // steps_per_epoch, state.stack) if state.step % steps_per_epoch == 0 else None)
    cosines = pd.DataFrame(update.cosines, columns=["step", "cosine"]).assign(epoch=lambda f: f.step // steps_per_epoch + 1)
    by_epoch = cosines.groupby("epoch").cosine.agg(["mean", "std", "min"])
    for row in rows:
        if row["epoch"] in by_epoch.index:
            row.update({f"cosine_{k}": float(v) for k, v in by_epoch.loc[row["epoch"]].items()})
    return rows


def net_cells(run: NetRun, seeds) -> list[dict]:
    """E2 / E3's grid: one cell per replicate seed."""
    return [{"run": asdict(run), "seed": int(seed)} for seed in seeds]


# ------------------------------------------------------------------------------------------------ summaries


def floors(frame: pd.DataFrame) -> pd.DataFrame:
    """E1 rows without the curves (teacher, method, lam, seed, floor, log10_floor, test_accuracy)."""
    return frame.drop(columns=[c for c in ("problem", "run", "epochs", "suboptimality") if c in frame])


def lambda_curve(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (teacher, seed): log10 floor against lambda for the distillation gradient, SGD as lambda = 0."""
    rows = floors(frame)
    sgd = rows[rows.method == SGD][["seed", "log10_floor"]]
    grads = rows[rows.method.str.startswith("KD-grad lam=")]
    zero = grads[["teacher", "seed"]].drop_duplicates().merge(sgd, on="seed").assign(lam=0.0)
    return pd.concat([zero, grads[["teacher", "seed", "lam", "log10_floor"]]], ignore_index=True).sort_values(["teacher", "seed", "lam"])


def best_lambdas(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (teacher, seed): the lambda of the grid (0 = SGD included) with the lowest floor."""
    curve = lambda_curve(frame)
    best = curve.loc[curve.groupby(["teacher", "seed"]).log10_floor.idxmin()]
    return best.rename(columns={"lam": "best_lambda"})[["teacher", "seed", "best_lambda", "log10_floor"]].reset_index(drop=True)


def to_records(frame: pd.DataFrame, experiment: str) -> list[Record]:
    """E1 records: log10 floor and test accuracy per (teacher, method, replicate)."""
    return [Record(experiment, row.method, row.teacher, int(row.seed), metric, float(getattr(row, metric)))
            for row in floors(frame).itertuples() for metric in ("log10_floor", "test_accuracy")]


def net_records(frame: pd.DataFrame, experiment: str) -> list[Record]:
    """E2 / E3 records: per (epoch, replicate) the cosine, training losses and gradient noise."""
    out = []
    for row in frame.itertuples():
        for metric in ("cosine_mean", "train_loss_sgd", "train_loss_kd", "noise_sgd", "noise_kd"):
            value = getattr(row, metric, float("nan"))
            if not pd.isna(value):
                out.append(Record(experiment, "KD vs SGD", f"epoch {row.epoch}", int(row.seed), metric, float(value)))
    return out


def claim_teachers(spec: ConvexSpec) -> tuple[str, str]:
    """The claims' good and poor teachers: the gradient-descent teachers with the most and the fewest steps."""
    return gd_teacher_name(max(spec.gd_steps)), gd_teacher_name(min(spec.gd_steps))


def problem_summary(problem: ConvexProblem, run: ConvexRun) -> pd.DataFrame:
    """E1's data and optimisation in one row."""
    spec = problem.spec
    return pd.DataFrame([{
        "dataset": spec.dataset, "train (student)": len(problem.y), "train (other half)": spec.n_train, "test": len(problem.y_test),
        "features": f"{spec.components} whitened principal components + bias", "classes": problem.classes, "L2 mu": spec.l2,
        "F*": problem.f_star, "smoothness L": problem.smooth, "batch": run.batch_size, "lr": run.lr, "lr x L": run.lr * problem.smooth,
        "epochs": run.epochs, "floor from epoch": run.floor_from,
    }]).set_index("dataset")


# The notes' pilot [P]: digits, numpy, batch 1, lr 0.03, 15 epochs, one seed; mean F - F* over the last 5 epochs.
NOTES_PILOT = {
    "good": "100-GD teacher: best floor 0.023 (λ = 0.5) vs SGD 0.039 (x0.59)",
    "trend": "best λ: optimum 0.75, 100 GD steps 0.5, 20 GD steps 0.1",
    "poor": "20-GD teacher, λ = 1: 0.107 vs SGD 0.039 (x2.7)",
    "lambda*": "λ* 1.0 / 0.90 / 0.60 (optimum / 100 / 20 GD steps)",
    "sigma2": "σ²(λ*) / σ²(0): 0 / 0.007 / 0.13",
}


def paper_vs_ours(frame: pd.DataFrame, teachers: pd.DataFrame, spec: ConvexSpec, run: ConvexRun) -> pd.DataFrame:
    """The paper's (qualitative) statements beside the notes' pilot and this run's E1 numbers (means over replicates)."""
    good, poor = claim_teachers(spec)
    rows = floors(frame)
    mean = lambda method, teacher: 10 ** rows[(rows.method == method) & (rows.teacher == teacher)].log10_floor.mean()  # noqa: E731
    sgd = mean(SGD, NO_TEACHER)
    best = best_lambdas(frame).groupby("teacher").best_lambda.mean()
    order = [t for t in teachers.index]
    ours = {
        "good": f"{good}: KD-grad λ = {run.kd_lambda:g} floor {mean(kd_grad(run.kd_lambda), good):.2g} vs SGD {sgd:.2g} "
                f"(x{mean(kd_grad(run.kd_lambda), good) / sgd:.2g})",
        "trend": "best λ: " + ", ".join(f"{t} {best[t]:.2g}" for t in order),
        "poor": f"{poor}, λ = 1: {mean(kd_grad(1.0), poor):.2g} vs SGD {sgd:.2g} (x{mean(kd_grad(1.0), poor) / sgd:.2g})",
        "lambda*": "λ* " + " / ".join(f"{teachers.loc[t, 'lambda*']:.2f}" for t in order) + f" ({' / '.join(order)})",
        "sigma2": "σ²(λ*) / σ²(0): " + " / ".join(f"{teachers.loc[t, 'sigma2(lambda*)'] / teachers.loc[t, 'sigma2(0)']:.2g}" for t in order),
    }
    statements = {
        "good": "KD reduces the stochastic-gradient noise: a good teacher lowers the noise floor [V]",
        "trend": "the reduction is partial and depends on the teacher [V]",
        "poor": "the distillation weight must be set with care [V]",
        "lambda*": "optimal weight: λ* = E<g*, g_θ> / E||g_θ||² (our derivation [R]; the paper's form [NF])",
        "sigma2": "noise at the optimum at λ* (0 only for the optimal teacher) [R]",
    }
    return pd.DataFrame({"paper": statements, "notes' pilot (digits, 1 seed) [P]": NOTES_PILOT, "ours (E1, mean over replicates)": ours})
