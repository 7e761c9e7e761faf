"""Cost models against hand counts (and against the parameters of the network built in torch)."""

import itertools

import pytest
import torch

from kdlib.nas import nb201, proxy_cnn
from kdlib.nas.cost import BatchNorm, Conv


def test_conv_counts():
    assert Conv(16, 32, 3, 8).params() == 9 * 16 * 32 + 2 * 32
    assert Conv(16, 32, 3, 8).macs() == 9 * 16 * 32 * 64
    assert Conv(48, 48, 5, 7, groups=48).params() == 25 * 48 + 2 * 48
    assert Conv(48, 48, 5, 7, groups=48).macs() == 25 * 48 * 49
    assert BatchNorm(64).params() == 128 and BatchNorm(64).macs() == 0
    with pytest.raises(ValueError, match="groups"):
        Conv(10, 48, 3, 7, groups=48)


def test_nb201_parameters_match_a_hand_count():
    # stem 3x3 (3->16) + BN: 432 + 32; reduction 16->32: 4608+64 + 9216+64 + 512; reduction 32->64: 18432+128 + 36864+128
    # + 2048; final BN 128; classifier 64*10 + 10
    base = (432 + 32) + (4608 + 64 + 9216 + 64 + 512) + (18432 + 128 + 36864 + 128 + 2048) + 128 + 650
    assert base == 73_306
    per_3x3 = 5 * ((9 * 16 * 16 + 32) + (9 * 32 * 32 + 64) + (9 * 64 * 64 + 128))  # one edge in the 15 cells
    per_1x1 = 5 * ((16 * 16 + 32) + (32 * 32 + 64) + (64 * 64 + 128))
    assert (per_3x3, per_1x1) == (243_040, 28_000)
    conv3, conv1, skip, none, pool = (nb201.OPS.index(op) for op in ("nor_conv_3x3", "nor_conv_1x1", "skip_connect", "none", "avg_pool_3x3"))
    assert nb201.parameters((conv3,) * 6) == base + 6 * per_3x3 == 1_531_546
    assert nb201.parameters((conv3, conv3, skip, conv3, conv1, conv3)) == base + 4 * per_3x3 + per_1x1
    assert nb201.parameters((skip, none, pool, skip, none, pool)) == base


def test_nb201_macs_match_a_hand_count():
    # every stage has C^2 * side^2 = 16^2*32^2 = 32^2*16^2 = 64^2*8^2 = 262,144; a 3x3 edge is 9x that, in 15 cells
    stem = 9 * 3 * 16 * 32 * 32
    reductions = (9 * 16 * 32 * 256 + 9 * 32 * 32 * 256 + 16 * 32 * 256) + (9 * 32 * 64 * 64 + 9 * 64 * 64 * 64 + 32 * 64 * 64)
    base = stem + reductions + 640
    conv3, conv1 = nb201.OPS.index("nor_conv_3x3"), nb201.OPS.index("nor_conv_1x1")
    assert nb201.macs((0,) * 6) == base == 7_783_040
    assert nb201.macs((conv3,) * 6) == base + 6 * 15 * 9 * 262_144 == 220_119_680  # NB-201's largest cell: ~220 M
    assert nb201.macs((conv1,) + (0,) * 5) == base + 15 * 262_144


def test_cnn_macs_match_a_hand_count():
    spec = proxy_cnn.CNNSpaceSpec()
    arch = (spec.options.index("e1_k3"),) * 4
    # stem 3x3 1->16 at 14x14; blocks (c_in, c_out, stride, side_out): (16,16,2,7) (16,24,1,7) (24,24,2,4) (24,32,1,4),
    # each a 3x3 depthwise on c_in channels and a 1x1 projection (expansion 1: no expand conv); head 32 -> 10
    stem = 9 * 16 * 14 * 14
    blocks = (9 * 16 * 49 + 16 * 16 * 49) + (9 * 16 * 49 + 16 * 24 * 49) + (9 * 24 * 16 + 24 * 24 * 16) + (9 * 24 * 16 + 24 * 32 * 16)
    assert proxy_cnn.macs(spec, arch) == stem + blocks + 320 == 102_432
    wide = (spec.options.index("e3_k5"),) + arch[1:]
    # block 1 gains a 1x1 expand 16->48 at 14x14, and its depthwise and projection run on 48 channels with a 5x5 kernel
    assert proxy_cnn.macs(spec, wide) - proxy_cnn.macs(spec, arch) == (16 * 48 * 196 + 25 * 48 * 49 + 48 * 16 * 49) - (9 * 16 * 49 + 16 * 16 * 49)


@pytest.mark.parametrize("profile", ["quick", "full"])
def test_cnn_parameter_count_matches_the_torch_model(profile):
    spec, _ = proxy_cnn.SETTINGS[profile]
    for arch in itertools.product(range(len(spec.options)), repeat=len(spec.widths)):
        model = proxy_cnn.build_model(spec, arch)
        assert proxy_cnn.parameters(spec, arch) == sum(p.numel() for p in model.parameters())
    out = model(torch.zeros(2, 1, 28, 28))
    assert out.shape == (2, 10)


def test_cnn_space_costs_and_errors():
    spec, _ = proxy_cnn.SETTINGS["quick"]
    space = proxy_cnn.proxy_cnn_space("quick")
    assert space.shape == (2, 2, 2) and space.cost((0, 1, 0)) == proxy_cnn.macs(spec, (0, 1, 0))
    assert space.base_arch("largest") == (1, 1, 1)
    with pytest.raises(ValueError, match="3 layers, got 4"):
        space.cost((0, 0, 0, 0))
    with pytest.raises(ValueError, match="unknown block options"):
        proxy_cnn.CNNSpaceSpec(options=("e1_k3", "e9_k9"))


def test_train_proxy_uses_one_thread_and_restores_the_count():
    import torch

    spec, _ = proxy_cnn.SETTINGS["quick"]
    recipe = proxy_cnn.ProxyRecipe(n_train=100, n_val=100, epochs=1)
    torch.set_num_threads(2)
    result = proxy_cnn.train_proxy(spec, recipe, (0, 1, 0))
    assert torch.get_num_threads() == 2 and 0.0 <= result["val_accuracy"] <= 1.0 and result["seconds"] > 0
