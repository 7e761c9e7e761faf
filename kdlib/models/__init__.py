"""Teachers and students: small CNNs, MLPs, frozen sentence encoders and a bag-of-tokens text student."""

from kdlib.models.encoders import ENCODERS, SentenceEncoder, cached_embeddings, load_tokenizer, prepare_encoder
from kdlib.models.mlp import MLP
from kdlib.models.text import BagOfTokensStudent, bag_of_tokens, build_vocabulary, tokenize_to_ids
from kdlib.models.vision import STUDENT_CNN, TEACHER_CNN, CNNConfig, SmallCNN, images_to_tensor, random_flip_crop

__all__ = [
    "ENCODERS",
    "MLP",
    "STUDENT_CNN",
    "TEACHER_CNN",
    "BagOfTokensStudent",
    "CNNConfig",
    "SentenceEncoder",
    "SmallCNN",
    "bag_of_tokens",
    "build_vocabulary",
    "cached_embeddings",
    "images_to_tensor",
    "load_tokenizer",
    "prepare_encoder",
    "random_flip_crop",
    "tokenize_to_ids",
]
