"""Hashed character n-grams in numpy: the baseline's features and the near-duplicate check's.

scikit-learn's vectorizers walk every n-gram of every ticket in Python (about 3 ms for a
400-character ticket, n = 1..4); here the n-grams of a whole batch are hashed at once with
numpy (a rolling polynomial hash over code points, then a 64-bit mix), so a 400-character
ticket costs a few microseconds, and routing needs neither scikit-learn nor a vocabulary
dictionary to load. Like sklearn's `char` analyzer: lower-cased, whitespace runs as one space.
"""

from __future__ import annotations

import re
import zlib

import numpy as np
from scipy import sparse

_WS = re.compile(r"\s+")
# words: runs of Latin letters (accents included), Greek, Cyrillic, digits and "_"; Chinese has no
# spaces to split on, so its characters are left to the character n-grams
_WORD = re.compile(r"[0-9a-z_\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]+")
_P = np.uint64(0x100000001B3)
_M1, _M2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every bit of the n-gram moves every bit of the hash."""
    h = (h ^ (h >> _S30)) * _M1
    h = (h ^ (h >> _S27)) * _M2
    return h ^ (h >> _S31)


def grams(texts, lo: int = 1, hi: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(document index, 64-bit hash) of every character n-gram, lo <= n <= hi, of `texts`."""
    joined = "\0".join(_WS.sub(" ", (t or "").replace("\0", " ")).lower() for t in texts)
    c = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    sep = c == 0
    doc = np.cumsum(sep)
    h, bad = np.zeros(len(c), np.uint64), np.zeros(len(c), bool)
    docs, hashes = [], []
    for n in range(1, hi + 1):
        m = len(c) - n + 1
        if m <= 0:
            break
        h = h[:m] * _P + c[n - 1:]          # h[i] = hash of c[i:i+n]
        bad = bad[:m] | sep[n - 1:]           # c[i:i+n] crosses a document boundary
        if n >= lo:
            ok = ~bad
            docs.append(doc[:m][ok])
            hashes.append(_mix(h[ok] + np.uint64(n)))
    if not docs:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    return np.concatenate(docs).astype(np.int64), np.concatenate(hashes)


def words(texts, hi: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """(document index, 64-bit hash) of every word n-gram, 1 <= n <= hi, of `texts` (lower-cased;
    words as `_WORD` finds them), hashed apart from the character n-grams: a word's CRC-32, then
    the rolling hash over the words and a different salt per n."""
    doc, crc = [], []
    for i, t in enumerate(texts):
        ws = _WORD.findall((t or "").lower())
        doc += [i] * len(ws)
        crc += [zlib.crc32(w.encode()) for w in ws]
    doc, w = np.asarray(doc, np.int64), np.asarray(crc, np.uint64)
    docs, hashes = [], []
    h, same = np.zeros(len(w), np.uint64), np.ones(len(w), bool)
    for n in range(1, hi + 1):
        m = len(w) - n + 1
        if m <= 0:
            break
        h = h[:m] * _P + w[n - 1:]
        same = same[:m] & (doc[:m] == doc[n - 1:])      # all n words in one document
        docs.append(doc[:m][same])
        hashes.append(_mix(h[same] + np.uint64(1000 + n)))
    if not docs:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    return np.concatenate(docs), np.concatenate(hashes)


def hashed(texts, lo: int = 1, hi: int = 3, bits: int = 20, chunk: int = 512) -> sparse.csr_matrix:
    """L2-normalised n-gram counts in 2**bits hashed columns (no fitting: stable across calls),
    so that `a @ b.T` is the cosine similarity of two texts. `chunk` texts at a time: the arrays of
    512 400-character texts stay in the CPU's cache (2,000 at once take 4x longer than 4 x 512)."""
    texts = list(texts)
    if len(texts) > chunk:
        return sparse.vstack([hashed(texts[i:i + chunk], lo, hi, bits, chunk) for i in range(0, len(texts), chunk)],
                             format="csr")
    d, h = grams(texts, lo, hi)
    X = _counts(d, (h >> np.uint64(64 - bits)).astype(np.int64), len(texts), 1 << bits)
    return normalize(X)


def _counts(doc: np.ndarray, col: np.ndarray, n: int, width: int) -> sparse.csr_matrix:
    """The (n, width) matrix counting each (doc, col) pair: sorted, no duplicates."""
    key = doc * width + col
    if n * width < 2 ** 31:       # half the bytes to sort
        key = key.astype(np.int32)
    key.sort()
    start = np.flatnonzero(np.concatenate(([True], key[1:] != key[:-1]))) if len(key) else np.zeros(0, np.int64)
    count = np.diff(np.append(start, len(key))).astype(np.float32)
    key = key[start].astype(np.int64)
    indptr = np.searchsorted(key, np.arange(n + 1, dtype=np.int64) * width)
    return sparse.csr_matrix((count, (key % width).astype(np.int32), indptr), shape=(n, width))


def normalize(X: sparse.csr_matrix) -> sparse.csr_matrix:
    """Rows scaled to unit L2 norm (empty rows stay empty), in place."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    norms = np.sqrt(np.bincount(rows, X.data ** 2, minlength=X.shape[0]))
    norms[norms == 0] = 1.0
    X.data /= norms[rows]
    return X


class Tfidf:
    """TF-IDF over hashed character n-grams, fitted like sklearn's TfidfVectorizer (smooth idf,
    optional sublinear tf, L2 rows). An n-gram's column is its hash's top BITS bits (the hashing
    trick; 4M buckets, so distinct n-grams rarely share one); the vocabulary is the buckets seen
    in at least `min_df` training texts (at most `max_features`, the most frequent), numbered
    through a lookup table."""

    BITS = 22

    def __init__(self, lo: int = 1, hi: int = 3, sublinear: bool = True, min_df: int = 2,
                 max_features: int = 300000, words: int = 0):
        self.lo, self.hi, self.sublinear, self.min_df, self.max_features = lo, hi, sublinear, min_df, max_features
        self.words = words

    def _buckets(self, texts):
        d, h = grams(texts, self.lo, self.hi)
        if self.words:
            dw, hw = words(texts, self.words)
            d, h = np.concatenate([d, dw]), np.concatenate([h, hw])
        return d, (h >> np.uint64(64 - self.BITS)).astype(np.int64)

    def fit(self, texts):
        texts = list(texts)
        d, b = self._buckets(texts)
        pairs = np.unique(b * (len(texts) + 1) + d)          # one (bucket, text) pair per text
        vocab, df = np.unique(pairs // (len(texts) + 1), return_counts=True)
        keep = df >= min(self.min_df, len(texts))
        vocab, df = vocab[keep], df[keep]
        if len(vocab) > self.max_features:
            top = np.sort(np.argsort(-df, kind="stable")[:self.max_features])
            vocab, df = vocab[top], df[top]
        self.set(vocab, (np.log((1 + len(texts)) / (1 + df)) + 1).astype(np.float32))
        return self

    def set(self, vocab: np.ndarray, idf: np.ndarray) -> "Tfidf":
        """Install a fitted vocabulary (sorted bucket numbers) and its idf."""
        self.vocab_, self.idf_ = vocab, idf
        self.table_ = np.full(1 << self.BITS, -1, np.int32)
        self.table_[vocab] = np.arange(len(vocab), dtype=np.int32)
        return self

    def transform(self, texts) -> sparse.csr_matrix:
        texts = list(texts)
        d, b = self._buckets(texts)
        col = self.table_[b]
        keep = col >= 0
        X = _counts(d[keep], col[keep], len(texts), len(self.vocab_))
        if self.sublinear:
            X.data = 1 + np.log(X.data)
        X.data *= self.idf_[X.indices]
        return normalize(X)
