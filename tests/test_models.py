import copy

import numpy as np
import pytest
import torch

from kdlib.models import MLP, BagOfTokensStudent, CNNConfig, SentenceEncoder, SmallCNN, images_to_tensor, random_flip_crop, tokenize_to_ids


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32), (1, 8)])
def test_cnn_shapes_and_interface(channels, size):
    model = SmallCNN(CNNConfig(channels, 2, widths=(4, 8, 8), embed_dim=16))
    x = torch.randn(5, channels, size, size)
    assert model.embed(x).shape == (5, 16)
    torch.testing.assert_close(model(x), model.head(model.embed(x)))
    with pytest.raises(ValueError, match="expected images"):
        model(torch.randn(5, channels + 1, size, size))
    with pytest.raises(ValueError, match="invalid CNN config"):
        SmallCNN(CNNConfig(channels, 1))


def test_mlp_linear_and_errors():
    linear = MLP(6, 3, hidden=())
    x = torch.randn(4, 2, 3)
    torch.testing.assert_close(linear.embed(x), x.flatten(1))
    with pytest.raises(ValueError, match="6 features"):
        linear(torch.randn(4, 5))
    with pytest.raises(ValueError, match="invalid MLP"):
        MLP(6, 3, dropout=1.0)


def test_bag_of_tokens_ignores_padding():
    torch.manual_seed(0)
    model = BagOfTokensStudent(vocab_size=50, num_classes=2, embed_dim=8, hidden=8)
    short = torch.tensor([[5, 7, 9, 0, 0]])
    longer = torch.tensor([[5, 7, 9, 0, 0, 0, 0, 0]])
    torch.testing.assert_close(model(short), model(longer))
    assert not torch.allclose(model(short), model(torch.tensor([[5, 7, 0, 0, 0]])))
    with pytest.raises(ValueError, match="token ids"):
        model(torch.randn(1, 5))


def test_images_to_tensor_scaling():
    grey = np.full((2, 4, 4), 255, dtype=np.uint8)
    assert images_to_tensor(grey).shape == (2, 1, 4, 4) and images_to_tensor(grey).max() == 1.0
    rgb = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    standardised = images_to_tensor(rgb, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    assert standardised.shape == (2, 3, 4, 4) and torch.all(standardised == -2.0)
    with pytest.raises(ValueError, match="uint8"):
        images_to_tensor(rgb.astype(np.float32))


def test_flip_crop_keeps_content_without_padding():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    out = random_flip_crop(x, torch.Generator().manual_seed(0), padding=0)
    for i in range(2):  # with no padding the only change is an optional horizontal flip
        assert torch.equal(out[i], x[i]) or torch.equal(out[i], x[i].flip(2))
    assert random_flip_crop(x, torch.Generator().manual_seed(1), padding=2).shape == x.shape


class _WhitespaceTokenizer:
    vocab = {"good": 3, "bad": 4, "film": 5}

    def __call__(self, texts, add_special_tokens, truncation, max_length):
        return {"input_ids": [[self.vocab.get(w, 1) for w in t.split()][:max_length] for t in texts]}


def test_tokenize_to_ids_pads_and_truncates():
    ids = tokenize_to_ids(_WhitespaceTokenizer(), ["good film", "bad bad bad bad"], max_length=3)
    assert ids.tolist() == [[3, 5, 0], [4, 4, 4]]


def test_minilm_embeddings_are_normalised_ordered_and_meaningful():
    encoder = SentenceEncoder("minilm-l6", max_length=32)
    texts = ["A wonderful, moving film.", "The cat sat on the mat.", "An excellent and touching movie!"]
    emb = encoder.encode(texts, batch_size=2, progress=False)
    assert emb.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(encoder.encode(texts[::-1], progress=False)[::-1], emb, atol=1e-5)  # order preserved
    assert emb[0] @ emb[2] > emb[0] @ emb[1] + 0.2  # paraphrases are closer than unrelated sentences


def test_cnn_pooling_before_relu_equals_the_textbook_order_exactly():
    """SmallCNN pools before its ReLU for speed; outputs and every gradient must equal conv -> BN -> ReLU -> pool."""
    torch.manual_seed(0)
    model = SmallCNN(CNNConfig(in_channels=1, num_classes=3, widths=(4, 6), embed_dim=5)).double()
    textbook = copy.deepcopy(model)
    for block in range(0, 8, 4):
        textbook.features[block + 2], textbook.features[block + 3] = textbook.features[block + 3], textbook.features[block + 2]
    assert isinstance(model.features[2], torch.nn.MaxPool2d) and isinstance(textbook.features[2], torch.nn.ReLU)
    x = torch.randn(5, 1, 13, 13, dtype=torch.float64)
    for net in (model, textbook):
        net(x).square().sum().backward()
    assert torch.equal(model(x), textbook(x))
    for (name, a), b in zip(model.named_parameters(), textbook.parameters()):
        assert torch.equal(a.grad, b.grad), name
