"""Prompt text and task to a sparse feature vector: the one featurizer of training and serving.

Columns ``[0, dim)`` are hashed:

- word n-grams (default 1-2) of the lower-cased ``\\w+`` words: a word's id is its
  ``zlib.crc32``, an n-gram's mixes its words' crc32 values (splitmix64);
- char n-grams (default 3-5) of each lower-cased whitespace token padded with one
  space each side (sklearn's ``char_wb``), each hashed with ``zlib.crc32``;
- each of these two blocks gets sublinear tf (1 + ln count) times the IDF learned
  at train time and is L2-normalised to 1/sqrt(2), so the text part has norm 1;
- one task token (crc32 of the task) with value 1.

Columns ``[dim, dim + 4)`` are dense: ln(1 + x) of the prompt's characters, words,
numbers and lines, standardised with the train split's mean and std.

A vector depends only on the text, the task and the fitted parameters. What one
whitespace token contributes is memoised (a pure function of the token, so the
cache changes speed, never output): a 1,000-character prompt takes about a
hundred microseconds once its tokens have been seen, a few hundred before.
"""

import math
import re
import zlib
from array import array
from collections.abc import Sequence
from operator import itemgetter
from typing import NamedTuple, cast

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from schemas.errors import UsageError
from schemas.router_artifact import FeaturizerParams

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

_WORD = re.compile(r"\w+")
_WORD_SEED = zlib.crc32(b"word")
_CHAR_SEED = zlib.crc32(b"char")
_TASK_SEED = zlib.crc32(b"task")
_BLOCK_NORM = 1 / math.sqrt(2)
_CACHE_LIMIT = 200_000
_MIX_1 = np.uint64(0x9E3779B97F4A7C15)
_MIX_2 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_3 = np.uint64(0x94D049BB133111EB)


class _Token(NamedTuple):
    """What one whitespace token contributes: char n-gram ids, word hashes, numbers."""

    char_ids: bytes  # uint32 array
    word_hashes: bytes  # uint64 array
    numbers: int


_CHARS = itemgetter(0)
_WORDS = itemgetter(1)
_NUMBERS = itemgetter(2)


class HashedCounts(NamedTuple):
    """Raw counts of one prompt: sorted unique ids and their counts per block."""

    word_ids: IntArray
    word_counts: FloatArray
    char_ids: IntArray
    char_counts: FloatArray
    dense: FloatArray


class Featurizer:
    """Turns (text, task) into feature vectors of width ``params.width``.

    ``idf`` (length ``params.dim``) comes from ``fit_featurizer``; without it
    only ``hashed_counts`` works. Not thread-safe (the token cache is a dict).
    """

    def __init__(self, params: FeaturizerParams, idf: FloatArray | None = None) -> None:
        if idf is not None and idf.shape != (params.dim,):
            raise UsageError(f"idf has shape {idf.shape}, expected ({params.dim},)")
        self.params = params
        self.idf = None if idf is None else np.asarray(idf, dtype=np.float64)
        self._mask = params.dim - 1
        self._dense_mean = np.asarray(params.dense_mean, dtype=np.float64)
        self._dense_std = np.asarray(params.dense_std, dtype=np.float64)
        self._tokens: dict[str, _Token] = {}

    def hashed_counts(self, text: str) -> HashedCounts:
        """Word and char ids with their counts, and the unstandardised dense features."""
        tokens = self._clip(text).lower().split()
        entries = list(map(self._tokens.get, tokens))
        if None in entries:
            entries = [
                entry or self._remember(token) for token, entry in zip(tokens, entries, strict=True)
            ]
        known = cast(list[_Token], entries)
        chars = np.frombuffer(b"".join(map(_CHARS, known)), dtype=np.uint32)
        words = np.frombuffer(b"".join(map(_WORDS, known)), dtype=np.uint64)
        numbers = sum(map(_NUMBERS, known))
        char_ids, char_counts = _unique(chars)
        word_ids, word_counts = _unique(self._word_ngrams(words))
        dense = np.log1p(
            np.array([len(text), words.size, numbers, text.count("\n") + 1], dtype=np.float64)
        )
        return HashedCounts(word_ids, word_counts, char_ids, char_counts, dense)

    def _remember(self, token: str) -> _Token:
        if len(self._tokens) >= _CACHE_LIMIT:
            self._tokens.clear()
        entry = self._tokens[token] = self._token(token)
        return entry

    def _clip(self, text: str) -> str:
        half = self.params.max_chars // 2
        return text if len(text) <= 2 * half else text[:half] + " " + text[-half:]

    def _token(self, token: str) -> _Token:
        padded = f" {token} ".encode()
        low, high = self.params.char_ngrams
        mask, crc = self._mask, zlib.crc32
        char_ids = [
            crc(padded[i : i + n], _CHAR_SEED) & mask
            for n in range(low, high + 1)
            for i in range(len(padded) - n + 1)
        ]
        words = _WORD.findall(token)
        return _Token(
            char_ids=array("I", char_ids).tobytes(),
            word_hashes=array("Q", [crc(word.encode(), _WORD_SEED) for word in words]).tobytes(),
            numbers=sum(map(str.isdigit, words)),
        )

    def _word_ngrams(self, words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        low, high = self.params.word_ngrams
        blocks = [words] if low <= 1 <= high else []
        grams = words
        for n in range(2, high + 1):
            grams = _mix(grams[:-1], words[n - 1 :])
            if n >= low:
                blocks.append(grams)
        joined = np.concatenate(blocks) if blocks else words[:0]
        return joined & np.uint64(self._mask)

    def transform_one(self, text: str, task: str) -> tuple[IntArray, FloatArray]:
        """Column indices and values of one prompt's vector (indices may repeat: add them)."""
        if self.idf is None:
            raise UsageError("featurizer has no IDF: fit it first")
        counts = self.hashed_counts(text)
        dim = self.params.dim
        indices = np.concatenate(
            [
                counts.word_ids,
                counts.char_ids,
                np.array([self.task_column(task)], dtype=np.int64),
                np.arange(dim, dim + counts.dense.size, dtype=np.int64),
            ]
        )
        values = np.concatenate(
            [
                _tfidf(counts.word_counts, self.idf[counts.word_ids]),
                _tfidf(counts.char_counts, self.idf[counts.char_ids]),
                np.ones(1),
                (counts.dense - self._dense_mean) / self._dense_std,
            ]
        )
        return indices, values

    def transform_texts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Many prompts' vectors without the task column, counted in one pass.

        Row i equals ``transform_one(texts[i], task)`` minus its task column: the
        router adds each request's task later. Counting every prompt's ids at once
        (one sort over (row, id) keys) avoids the per-prompt numpy calls that
        dominate ``transform_one`` on short prompts.
        """
        if self.idf is None:
            raise UsageError("featurizer has no IDF: fit it first")
        char_bytes, word_bytes = [], []
        dense = np.empty((len(texts), len(self.params.dense_features)))
        for row, text in enumerate(texts):
            tokens = self._clip(text).lower().split()
            known = [self._tokens.get(t) or self._remember(t) for t in tokens]
            char_bytes.append(b"".join(map(_CHARS, known)))
            word_bytes.append(b"".join(map(_WORDS, known)))
            words_in_row = len(word_bytes[-1]) // 8
            dense[row] = (len(text), words_in_row, sum(map(_NUMBERS, known)), text.count("\n") + 1)
        chars = _split(np.frombuffer(b"".join(char_bytes), dtype=np.uint32), char_bytes, 4)
        words = self._ngrams_per_row(
            np.frombuffer(b"".join(word_bytes), dtype=np.uint64),
            np.array([len(w) // 8 for w in word_bytes], dtype=np.int64),
        )
        dense = (np.log1p(dense) - self._dense_mean) / self._dense_std
        blocks = [self._block(self.idf, *words), self._block(self.idf, *chars)]
        dim, n = self.params.dim, len(texts)
        rows = np.concatenate([b[0] for b in blocks] + [np.repeat(np.arange(n), dense.shape[1])])
        cols = np.concatenate(
            [b[1] for b in blocks] + [np.tile(np.arange(dim, dim + dense.shape[1]), n)]
        )
        values = np.concatenate([b[2] for b in blocks] + [dense.ravel()])
        matrix = sp.csr_matrix((values, (rows, cols)), shape=(n, self.params.width))
        matrix.sum_duplicates()
        return matrix

    def _ngrams_per_row(
        self, words: npt.NDArray[np.uint64], sizes: IntArray
    ) -> tuple[IntArray, IntArray]:
        """Every row's word n-gram ids (``_word_ngrams`` per row, never across rows) and
        how many each row has."""
        low, high = self.params.word_ngrams
        row_of = np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)
        ids = [words] if low <= 1 <= high else []
        rows = [row_of] if low <= 1 <= high else []
        grams = words
        for n in range(2, high + 1):
            grams = _mix(grams[:-1], words[n - 1 :])
            same = row_of[: grams.size] == row_of[n - 1 :]  # all n words in one row
            if n >= low:
                ids.append(grams[same])
                rows.append(row_of[: grams.size][same])
        joined = np.concatenate(ids) if ids else words[:0]
        row_ids = np.concatenate(rows) if rows else row_of[:0]
        return (joined & np.uint64(self._mask)).astype(np.int64), row_ids

    def _block(
        self, idf: FloatArray, ids: IntArray, row_ids: IntArray
    ) -> tuple[IntArray, IntArray, FloatArray]:
        """(rows, columns, tf-idf values) of one block over many prompts, each row's
        block L2-normalised to 1/sqrt(2) as in ``transform_one``."""
        n = int(row_ids.max()) + 1 if row_ids.size else 0
        keys = row_ids * self.params.dim + ids
        unique, counts = np.unique(keys, return_counts=True)
        rows, cols = np.divmod(unique, self.params.dim)
        values = (1.0 + np.log(counts)) * idf[cols]
        norms = np.sqrt(np.bincount(rows, weights=values * values, minlength=n))
        scale = np.divide(_BLOCK_NORM, norms, out=np.ones_like(norms), where=norms > 0)
        return rows, cols, values * scale[rows]

    def task_column(self, task: str) -> int:
        return zlib.crc32(task.encode(), _TASK_SEED) & self._mask

    def transform(self, texts: Sequence[str], tasks: Sequence[str]) -> sp.csr_matrix:
        """Vectors of many prompts as one CSR matrix, rows in input order."""
        if len(texts) != len(tasks):
            raise UsageError("texts and tasks differ in length")
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
        counts = raw.hashed_counts(text)
        df[np.union1d(counts.word_ids, counts.char_ids)] += 1
        dense[row] = counts.dense
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


def _split(
    flat: npt.NDArray[np.uint32], parts: list[bytes], width: int
) -> tuple[IntArray, IntArray]:
    """Ids joined from per-row byte strings, and the row each came from."""
    sizes = np.array([len(p) // width for p in parts], dtype=np.int64)
    return flat.astype(np.int64), np.repeat(np.arange(sizes.size, dtype=np.int64), sizes)


def _mix(left: npt.NDArray[np.uint64], right: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64 of ``left * golden + right``: an n-gram id from its words' hashes."""
    h = left * _MIX_1 + right
    h = (h ^ (h >> np.uint64(30))) * _MIX_2
    h = (h ^ (h >> np.uint64(27))) * _MIX_3
    return h ^ (h >> np.uint64(31))


def _unique(ids: npt.NDArray[np.uint32] | npt.NDArray[np.uint64]) -> tuple[IntArray, FloatArray]:
    if ids.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    ordered = np.sort(ids)
    starts = np.empty(ordered.size, dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    first = np.flatnonzero(starts)
    counts = np.diff(np.append(first, ordered.size))
    return ordered[first].astype(np.int64), counts.astype(np.float64)


def _tfidf(counts: FloatArray, idf: FloatArray) -> FloatArray:
    values = (1.0 + np.log(counts)) * idf
    norm = float(np.sqrt(values @ values))
    return values * (_BLOCK_NORM / norm) if norm > 0 else values


def _csr(parts: list[tuple[IntArray, FloatArray]], width: int) -> sp.csr_matrix:
    lengths = np.array([len(indices) for indices, _ in parts], dtype=np.int64)
    indptr = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(lengths)])
    indices = np.concatenate([i for i, _ in parts]) if parts else np.zeros(0, dtype=np.int64)
    values = np.concatenate([v for _, v in parts]) if parts else np.zeros(0)
    matrix = sp.csr_matrix((values, indices, indptr), shape=(len(parts), width))
    matrix.sum_duplicates()
    return matrix
