"""KD-Zero (notebook 09): primitives, composed distillers, loss rejection, formulas, and the distiller space searched
through kdlib.nas (batched evaluations, evolution with crossover, random search) on a fake fitness."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from kdlib.distill import get_objective
from kdlib.distill.kdzero import DISTANCES, TRANSFORMS, Genome, compose, formula, rejection
from kdlib.nas import search
from kdlib.nas.baselines import crossover
from kdlib.nas.distiller_space import DistillerSlots, distiller_space, rejection_counts, rejection_table
from kdlib.nas.space import Evaluation
from kdlib.train import Batch


def _batch(n=6, k=4, seed=0, labels=None):
    g = torch.Generator().manual_seed(seed)
    s, t = torch.randn(n, k, generator=g, dtype=torch.float64), 3 * torch.randn(n, k, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g) if labels is None else labels
    return s, t, Batch(torch.arange(n), y, t, {}, 0)


# --- primitives by hand ---------------------------------------------------------------------------------------
def test_transforms_by_hand():
    z = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, -2.0]])
    assert torch.allclose(TRANSFORMS.get("min_max")(z), torch.tensor([[0.0, 1 / 3, 1.0], [1.0, 1.0, 0.0]]), atol=1e-6)
    assert torch.allclose(TRANSFORMS.get("norm_C")(z)[1], torch.tensor([2.0, 2.0, -2.0]) / math.sqrt(12))
    assert torch.allclose(TRANSFORMS.get("norm_N")(z)[:, 0], torch.tensor([0.0, 1.0]))  # a column over the batch
    e = torch.exp(torch.tensor([0.0, 0.25, 0.75]))
    assert torch.allclose(TRANSFORMS.get("softmax_T4")(z)[0], e / e.sum())
    e2 = torch.exp(torch.tensor([0.0, 2.0, 6.0]))
    assert torch.allclose(TRANSFORMS.get("catt")(z)[0], 3 * e2 / e2.sum())
    assert torch.isnan(TRANSFORMS.get("log")(z)[1, 2]) and TRANSFORMS.get("pow2")(z)[0, 2] == 9.0


def test_distances_by_hand():
    a, b = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, 0.0]]), torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 2.0]])
    assert torch.allclose(DISTANCES.get("l1")(a, b), torch.tensor([4 / 3, 2 / 3]))
    assert torch.allclose(DISTANCES.get("mse")(a, b), torch.tensor([8 / 3, 4 / 3]))
    assert torch.allclose(DISTANCES.get("smooth_l1")(a, b), torch.tensor([(1.5 + 1.5) / 3, 1.5 / 3]))
    assert torch.allclose(DISTANCES.get("subtract")(a, b), torch.tensor([4 / 3, -2 / 3]))
    assert torch.equal(DISTANCES.get("lesser_than")(a, b), torch.tensor([0.0, 1 / 3]))
    assert torch.allclose(DISTANCES.get("cosine")(a, b), 1 - torch.tensor([4 / (math.sqrt(14) * math.sqrt(2)), 1 / math.sqrt(5)]))
    p, q = F.softmax(b, 1), F.softmax(a, 1)  # KL(softmax(teacher) || softmax(student))
    assert torch.allclose(DISTANCES.get("kl")(a, b), (p * (p.log() - q.log())).sum(1))
    assert torch.allclose(DISTANCES.get("pearson")(a, b)[0], torch.tensor(1 - 0.0))  # (1, 2, 3) and (1, 0, 1): uncorrelated


def test_the_intra_class_correlation_is_shared_equally_by_the_batch():
    s, t, _ = _batch()
    values = DISTANCES.get("pearson_intra")(s, t)
    assert values.shape == (6,) and torch.allclose(values, values[0].expand(6))
    columns = [1 - torch.corrcoef(torch.stack([s[:, c], t[:, c]]))[0, 1] for c in range(4)]
    assert values[0].item() == pytest.approx(torch.stack(columns).mean().item(), rel=1e-6)


# --- composed distillers ----------------------------------------------------------------------------------------
def test_compose_recovers_vanilla_kd_value_and_gradient():
    s, _, batch = _batch(labels=torch.tensor([0, 1, -1, 3, 2, 1]))
    mine = s.clone().requires_grad_(True)
    theirs = s.clone().requires_grad_(True)
    ours = compose(Genome(("nop", "nop"), "kl_T4", 1.0))(mine, batch)
    reference = get_objective("kd_sum", temperature=4.0)(theirs, batch)
    assert ours.shape == (6,) and torch.allclose(ours, reference)
    ours.mean().backward()
    reference.mean().backward()
    assert torch.allclose(mine.grad, theirs.grad)


def test_compose_on_a_tiny_batch_by_hand():
    s = torch.tensor([[0.0, math.log(3.0)]], dtype=torch.float64, requires_grad=True)  # softmax: (1/4, 3/4)
    t = torch.tensor([[0.0, 0.0]], dtype=torch.float64)  # softmax: (1/2, 1/2)
    batch = Batch(torch.arange(1), torch.tensor([1]), t, {}, 0)
    loss = compose(Genome(("softmax", "sqrt"), "mse", 5.0))(s, batch)
    a, b = np.sqrt([0.25, 0.75]), np.sqrt([0.5, 0.5])
    assert loss.item() == pytest.approx(-math.log(0.75) + 5 * np.mean((a - b) ** 2))
    assert torch.autograd.gradcheck(lambda x: compose(Genome(("softmax", "sqrt"), "mse", 5.0))(x, batch), (s,))


def test_the_registered_factory_builds_the_genome_from_plain_data():
    s, _, batch = _batch()
    genome = Genome(("softmax", "tanh"), "pearson_intra", 25)
    assert genome.weight == 25.0 and genome.spec()["weight"] == 25.0
    assert torch.equal(get_objective(**genome.spec())(s, batch), compose(genome)(s, batch))


def test_bad_genomes_are_rejected_with_clear_errors():
    with pytest.raises(ValueError, match="unknown transform 'softplus'; available: .*softmax"):
        Genome(("softplus",), "kl", 1.0)
    with pytest.raises(ValueError, match="unknown distance 'kl_T8'"):
        Genome(("nop",), "kl_T8", 1.0)
    with pytest.raises(ValueError, match="weight must be > 0"):
        Genome(("nop",), "kl", 0.0)


# --- loss rejection -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("genome, reason", [
    (Genome(("nop", "log"), "kl", 1.0), "non-finite"),  # log of negative logits: NaN
    (Genome(("min_max", "sqrt"), "mse", 1.0), "non-finite"),  # finite values, infinite gradient at the row minimum
    (Genome(("softmax", "nop"), "subtract", 5.0), "constant"),  # probabilities sum to 1 for both: always 0
    (Genome(("norm_C", "pow2"), "subtract", 1.0), "constant"),  # unit rows: mean of squares is 1/K for both
    (Genome(("softmax", "nop"), "lesser_than", 1.0), "non-differentiable"),  # a comparison has no gradient
    (Genome(("nop", "nop"), "kl_T4", 1.0), None),
    (Genome(("softmax", "sqrt"), "pearson", 25.0), None),
])
def test_rejection(genome, reason):
    s, t, _ = _batch(n=16, k=10)
    assert rejection(genome, 0.1 * s.float(), t.float()) == reason


def test_formula_renders_text_and_latex():
    genome = Genome(("softmax", "sqrt"), "pearson", 25.0)
    assert formula(genome) == "CE(y, s) + 25·[1 − pearson_C(sqrt(softmax(s)), sqrt(softmax(t)))]"
    assert formula(Genome(("nop", "nop"), "kl_T4", 1.0)) == "CE(y, s) + 1·[16·KL(softmax(t/4) ‖ softmax(s/4))]"
    assert formula(genome, latex=True) == r"\mathrm{CE}(y, s) + 25\,\left[1-\rho_C(\sqrt{\sigma(s)},\sqrt{\sigma(t)})\right]"
    assert formula(Genome(("min_max", "exp"), "kl", 5.0), latex=True) == (
        r"\mathrm{CE}(y, s) + 5\,\left[\mathrm{KL}\big(\sigma(e^{\mathrm{minmax}_C(t)})\,\|\,\sigma(e^{\mathrm{minmax}_C(s)})\big)\right]")


# --- the space and the searches ---------------------------------------------------------------------------------
SLOTS = DistillerSlots(transforms=(("nop", "softmax", "log_softmax"), ("nop", "log", "tanh")), distances=("kl", "mse", "subtract", "lesser_than"),
                       weights=(1.0, 5.0))


def test_slots_map_genomes_to_architectures_and_back():
    assert SLOTS.shape == (3, 3, 4, 2) and [layer.name for layer in SLOTS.layers()] == ["T1", "T2", "D", "w"]
    for arch in [(0, 0, 0, 0), (2, 1, 3, 1), (1, 2, 1, 0)]:
        assert SLOTS.arch(SLOTS.genome(arch)) == arch
    assert SLOTS.genome((1, 2, 1, 1)) == Genome(("softmax", "tanh"), "mse", 5.0)
    with pytest.raises(ValueError, match="not in this space"):
        SLOTS.arch(Genome(("norm_C", "nop"), "kl", 1.0))


@pytest.fixture
def reasons():
    s, t, _ = _batch(n=16, k=10)
    return rejection_table(SLOTS, 0.1 * s.float(), t.float())


def test_rejection_table_and_counts(reasons):
    counts = rejection_counts(reasons)
    assert sum(counts.values()) == 72 and counts["accepted"] > 0 and counts["non-finite"] > 0
    assert counts["non-differentiable"] >= 3 * 2 * 2  # lesser_than everywhere it is not rejected earlier
    assert reasons[SLOTS.arch(Genome(("nop", "log"), "kl", 1.0))] == "non-finite"
    assert reasons[SLOTS.arch(Genome(("softmax", "nop"), "subtract", 1.0))] == "constant"
    assert reasons[SLOTS.arch(Genome(("nop", "nop"), "kl", 1.0))] == ""


def _fake_space(reasons, calls):
    """Fitness: prefers softmax, tanh, mse and weight 5 (one point each), plus a small tie-breaker."""
    def fitness(genomes):
        calls.append(len(genomes))
        return [Evaluation(r := (g.transforms[0] == "softmax") + (g.transforms[1] == "tanh") + (g.distance == "mse") + (g.weight == 5)
                           + 0.01 * len(g.distance), r) for g in genomes]
    return distiller_space(SLOTS, reasons, fitness)


@pytest.mark.parametrize("strategy, params", [("random", {"batch": 3}), ("evolution", {"population_size": 6, "tournament_size": 3, "batch": 4,
                                                                                         "crossover_rate": 0.5})])
def test_search_wiring_on_a_fake_fitness(reasons, strategy, params):
    calls = []
    space = _fake_space(reasons, calls)
    assert space.size == rejection_counts(reasons)["accepted"]
    result = search(space, strategy, budget=20, seed=3, **params)
    assert result.n_evaluations == 20 == sum(calls) and max(calls) <= max(params["batch"], params.get("population_size", 0))
    assert all(reasons[arch] == "" for arch in result.history_archs), "a rejected genome was evaluated"
    assert len(set(result.history_archs)) == 20
    assert result.reward == max(result.history_rewards) and result.arch == result.history_archs[int(np.argmax(result.history_rewards))]


def test_evolution_finds_the_fake_optimum_more_often_than_random_search(reasons):
    optimum = SLOTS.arch(Genome(("softmax", "tanh"), "mse", 5.0))
    found = {strategy: sum(search(_fake_space(reasons, []), strategy, budget=15, seed=seed, **params).arch == optimum for seed in range(20))
             for strategy, params in (("random", {}), ("evolution", {"population_size": 5, "tournament_size": 2, "batch": 2, "crossover_rate": 0.5}))}
    assert found["evolution"] > found["random"]


def test_batched_evaluations_count_the_budget_and_stop_inside_a_batch(reasons):
    calls = []
    result = search(_fake_space(reasons, calls), "random", budget=7, seed=0, batch=3)
    assert calls == [3, 3, 1] and result.n_evaluations == 7
    with pytest.raises(ValueError, match="batch must be >= 1"):
        search(_fake_space(reasons, []), "random", budget=7, seed=0, batch=0)
    with pytest.raises(ValueError, match="crossover_rate in"):
        search(_fake_space(reasons, []), "evolution", budget=7, seed=0, crossover_rate=1.5)


def test_distiller_space_needs_reasons_of_its_shape(reasons):
    with pytest.raises(ValueError, match="reasons must have the space's shape"):
        distiller_space(SLOTS, reasons[:, :, :2], lambda genomes: [])


def test_crossover_takes_each_slot_from_a_parent_and_falls_back_to_the_first(reasons):
    space = _fake_space(reasons, [])
    first, second = SLOTS.arch(Genome(("softmax", "tanh"), "mse", 5.0)), SLOTS.arch(Genome(("nop", "nop"), "kl", 1.0))
    children = {crossover(space, first, second, 0.0, np.random.default_rng(seed)) for seed in range(200)}
    assert first in children and second in children and len(children) > 2
    assert all(all(c in (a, b) for c, a, b in zip(child, first, second)) for child in children)
    rejected = SLOTS.arch(Genome(("nop", "log"), "kl", 1.0))  # a parent that is itself rejected: mixes with T1 = nop, T2 = log are too
    mixes = [crossover(space, first, rejected, 0.0, np.random.default_rng(seed)) for seed in range(200)]
    assert all(space.is_valid(child) and all(c in (a, b) for c, a, b in zip(child, first, rejected)) for child in mixes)
    assert first in mixes and any(child != first for child in mixes)
