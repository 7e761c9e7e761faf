"""Class names of the datasets whose files do not carry them (shared by the offline loaders and the downloaders)."""

FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
TWEET_CLASSES = ("negative", "neutral", "positive")
# Class order of the Planetoid one-hot labels (as documented by PyTorch Geometric and DGL).
PLANETOID_CLASSES = {
    "cora": ("Case_Based", "Genetic_Algorithms", "Neural_Networks", "Probabilistic_Methods",
             "Reinforcement_Learning", "Rule_Learning", "Theory"),
    "citeseer": ("Agents", "AI", "DB", "IR", "ML", "HCI"),
}
