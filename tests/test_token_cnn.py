import pytest
import torch

from kdlib.models.token_cnn import PAD, UNKNOWN, StackedTokenCNN, TokenCNN, remap_to_vocabulary


def test_remap_keeps_padding_and_marks_unknown_tokens():
    ids = torch.tensor([[5, 7, 9, 0], [9, 0, 0, 0]])
    out = remap_to_vocabulary(ids, {9: 0, 5: 1})
    assert out.tolist() == [[3, UNKNOWN, 2, PAD], [2, PAD, PAD, PAD]]


def test_each_student_of_the_stack_is_a_standalone_token_cnn():
    torch.manual_seed(0)
    stack = StackedTokenCNN(50, 2, [1, 3, 2], seed=0, embed_dim=4, filters=6, hidden=5)
    with torch.no_grad():  # make the students differ
        for _, view in stack.student_views():
            view.add_(0.1 * torch.randn_like(view) * torch.arange(1, view.shape[0] + 1).view(-1, *[1] * (view.ndim - 1)))
    ids = torch.randint(2, 50, (7, 9))
    ids[:, 6:] = PAD
    out = stack(ids)
    assert out.shape == (3, 7, 6)
    for m in range(3):
        student = stack.student(m).eval()
        assert isinstance(student, TokenCNN)
        assert torch.allclose(student(ids), out[m], atol=1e-5)
    assert (out[0, :, [1, 2, 4, 5]] < -1e8).all()  # student 0 has one slot per class


def test_padding_does_not_change_a_text_and_bad_ids_raise():
    stack = StackedTokenCNN(30, 2, [2, 2], seed=1, embed_dim=4, filters=6, hidden=5)
    ids = torch.tensor([[4, 5, 6, PAD, PAD]])
    longer = torch.cat([ids, torch.zeros(1, 4, dtype=torch.long)], 1)
    assert torch.allclose(stack(ids), stack(longer), atol=1e-6)
    with pytest.raises(ValueError, match="token ids"):
        stack(ids.float())
    with pytest.raises(ValueError, match="invalid token CNN"):
        TokenCNN(2, 2)
