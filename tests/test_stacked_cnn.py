import pytest
import torch

from kdlib.models.stacked_cnn import StackedCNN
from kdlib.models.vision import CNNConfig

CONFIG = CNNConfig(in_channels=3, num_classes=4, widths=(4, 6), embed_dim=5)


@pytest.mark.parametrize("training", [True, False])
def test_stacked_students_match_standalone_students(training):
    stacked = StackedCNN(CONFIG, count=3, seed=0, shared_init=False).train(training)
    x = torch.randn(7, 3, 12, 12)
    logits = stacked(x)
    assert logits.shape == (3, 7, 4)
    for m in range(3):
        assert torch.allclose(logits[m], stacked.student(m).train(training)(x), atol=1e-5)
    assert not torch.allclose(logits[0], logits[1])


def test_shared_init_and_independent_gradients():
    stacked = StackedCNN(CONFIG, count=2, seed=1)
    x = torch.randn(5, 3, 8, 8)
    logits = stacked(x)
    assert torch.allclose(logits[0], logits[1])  # same initial weights
    logits[0].sum().backward()  # a loss on student 0 only
    assert stacked.w_head.grad[1].abs().max() == 0 and stacked.w_head.grad[0].abs().max() > 0
    assert stacked.features[0].weight.grad[CONFIG.widths[0]:].abs().max() == 0


def test_bad_input_raises():
    with pytest.raises(ValueError, match="expected images"):
        StackedCNN(CONFIG, count=2, seed=0)(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="at least one"):
        StackedCNN(CONFIG, count=0, seed=0)
