"""Prompt text and task to a sparse feature vector: the one featurizer of training and serving.

Columns ``[0, dim)`` are hashed (``zlib.crc32``, each kind with its own seed):

- word 1-2grams of the lower-cased ``\\w+`` tokens and char n-grams (3-5) of each
  whitespace token padded with one space on each side (sklearn's ``char_wb``);
  each block gets sublinear tf (1 + ln count) times the IDF learned at train
  time, and is L2-normalised to 1/sqrt(2), so the text part has norm 1;
- one task token with value 1.

Columns ``[dim, dim + 4)`` are dense: ln(1 + x) of the prompt's characters,
words, numbers and lines, standardised with the train split's mean and std.

The vector depends only on the text, the task and the fitted parameters. Char
n-gram ids are memoised per token (a pure function of the token, so the cache
changes speed, never output): serving one 1,000-character prompt takes tens of
microseconds once its words have been seen, a few hundred before.
"""

import math
import re
import zlib
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from schemas.router_artifact import FeaturizerParams

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_WORD = re.compile(r"\w+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD_SEED = zlib.crc32(b"word")
_CHAR_SEED = zlib.crc32(b"char")
_TASK_SEED = zlib.crc32(b"task")
_BLOCK_NORM = 1 / math.sqrt(2)
_CACHE_LIMIT = 200_000

V = TypeVar("V")


class Featurizer:
    """Turns (text, task) into feature vectors of width ``params.width``.

    ``idf`` (length ``params.dim``) comes from ``fit_featurizer``; without it
    the featurizer gives raw hashed counts only (``hashed_counts``).
    """

    def __init__(self, params: FeaturizerParams, idf: FloatArray | None = None) -> None:
        if idf is not None and idf.shape != (params.dim,):
            raise ValueError(f"idf has shape {idf.shape}, expected ({params.dim},)")
        self.params = params
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float64)
        self._mask = params.dim - 1
        self._dense_mean = np.asarray(params.dense_mean, dtype=np.float64)
        self._dense_std = np.asarray(params.dense_std, dtype=np.float64)
        self._word_cache: dict[str, int] = {}
        self._char_cache: dict[str, list[int]] = {}

    # --- raw hashed counts ---------------------------------------------------

    def hashed_counts(self, text: str) -> tuple[IntArray, FloatArray, IntArray, FloatArray]:
        """Word ids and counts, then char ids and counts (ids sorted and unique)."""
        text = self._clip(text).lower()
        word_ids, word_counts = _unique(self._word_ids(_WORD.findall(text)))
        char_ids, char_counts = _unique(self._char_ids(text.split()))
        return word_ids, word_counts, char_ids, char_counts

    def _clip(self, text: str) -> str:
        limit = self.params.max_chars
        if len(text) <= limit:
            return text
        return text[: limit // 2] + " " + text[-(limit // 2) :]

    def _word_ids(self, words: list[str]) -> list[int]:
        low, high = self.params.word_ngrams
        cache, mask = self._word_cache, self._mask
        ids: list[int] = []
        if low <= 1 <= high:
            for word in words:
                found = cache.get(word)
                if found is None:
                    found = zlib.crc32(word.encode(), _WORD_SEED) & mask
                    _remember(cache, word, found)
                ids.append(found)
        for n in range(max(low, 2), high + 1):
            ids.extend(
                zlib.crc32(" ".join(words[i : i + n]).encode(), _WORD_SEED) & mask
                for i in range(len(words) - n + 1)
            )
        return ids

    def _char_ids(self, tokens: list[str]) -> list[int]:
        cache = self._char_cache
        ids: list[int] = []
        for token in tokens:
            found = cache.get(token)
            if found is None:
                found = self._token_char_ids(token)
                _remember(cache, token, found)
            ids.extend(found)
        return ids

    def _token_char_ids(self, token: str) -> list[int]:
        padded = f" {token} ".encode()
        low, high = self.params.char_ngrams
        mask, crc = self._mask, zlib.crc32
        return [
            crc(padded[i : i + n], _CHAR_SEED) & mask
            for n in range(low, high + 1)
            for i in range(len(padded) - n + 1)
        ]

    def dense_raw(self, text: str) -> FloatArray:
        """The unstandardised dense features of ``DENSE_FEATURES``."""
        return np.array(
            [
                math.log1p(len(text)),
                math.log1p(len(_WORD.findall(text))),
                math.log1p(len(_NUMBER.findall(text))),
                math.log1p(text.count("\n") + 1),
            ]
        )

    # --- full vectors --------------------------------------------------------

    def transform_one(self, text: str, task: str) -> tuple[IntArray, FloatArray]:
        """Column indices and values of one prompt's vector (indices may repeat: add them)."""
        if self.idf is None:
            raise ValueError("featurizer has no IDF: fit it first")
        word_ids, word_counts, char_ids, char_counts = self.hashed_counts(text)
        word_values = _tfidf(word_counts, self.idf[word_ids])
        char_values = _tfidf(char_counts, self.idf[char_ids])
        dense = (self.dense_raw(text) - self._dense_mean) / self._dense_std
        dim = self.params.dim
        indices = np.concatenate(
            [
                word_ids,
                char_ids,
                np.array([self.task_column(task)], dtype=np.int64),
                np.arange(dim, dim + dense.size, dtype=np.int64),
            ]
        )
        values = np.concatenate([word_values, char_values, np.ones(1), dense])
        return indices, values

    def task_column(self, task: str) -> int:
        return zlib.crc32(task.encode(), _TASK_SEED) & self._mask

    def transform(self, texts: Sequence[str], tasks: Sequence[str]) -> sp.csr_matrix:
        """Vectors of many prompts as one CSR matrix, rows in input order."""
        if len(texts) != len(tasks):
            raise ValueError("texts and tasks differ in length")
        parts = [self.transform_one(text, task) for text, task in zip(texts, tasks, strict=True)]
        return _csr(parts, self.params.width)


def fit_featurizer(
    params: FeaturizerParams, texts: Sequence[str]
) -> tuple[FeaturizerParams, FloatArray]:
    """Learn the IDF vector and the dense features' mean and std from train prompts.

    IDF is sklearn's smooth form, ln((1 + n) / (1 + df)) + 1, over word and char
    ids together. Returns the params with the learned statistics, and the IDF.
    """
    raw = Featurizer(params)
    df = np.zeros(params.dim, dtype=np.float64)
    dense = np.zeros((len(texts), len(params.dense_features)))
    for row, text in enumerate(texts):
        word_ids, _, char_ids, _ = raw.hashed_counts(text)
        df[np.union1d(word_ids, char_ids)] += 1
        dense[row] = raw.dense_raw(text)
    n = len(texts)
    idf = np.log((1 + n) / (1 + df)) + 1
    mean = dense.mean(axis=0) if n else np.zeros(dense.shape[1])
    std = dense.std(axis=0) if n else np.ones(dense.shape[1])
    std = np.where(std > 1e-9, std, 1.0)
    fitted = params.model_copy(
        update={
            "dense_mean": tuple(float(v) for v in mean),
            "dense_std": tuple(float(v) for v in std),
            "idf_documents": n,
        }
    )
    return fitted, idf


def _remember(cache: dict[str, V], key: str, value: V) -> None:
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = value


def _unique(ids: list[int]) -> tuple[IntArray, FloatArray]:
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    unique, counts = np.unique(np.array(ids, dtype=np.int64), return_counts=True)
    return unique, counts.astype(np.float64)


def _tfidf(counts: FloatArray, idf: FloatArray) -> FloatArray:
    values = (1.0 + np.log(counts)) * idf
    norm = float(np.sqrt(values @ values))
    return values * (_BLOCK_NORM / norm) if norm > 0 else values


def _csr(parts: list[tuple[IntArray, FloatArray]], width: int) -> sp.csr_matrix:
    lengths = np.array([len(indices) for indices, _ in parts], dtype=np.int64)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    indices = np.concatenate([i for i, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
    values = np.concatenate([v for _, v in parts]) if parts else np.zeros(0)
    matrix = sp.csr_matrix((values, indices, indptr), shape=(len(parts), width))
    matrix.sum_duplicates()
    return matrix
