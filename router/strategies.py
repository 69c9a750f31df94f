"""Query strategies: which uncertain tickets a dispatcher should see first.

Pure objects in the style of small-text's `query_strategies`: no storage, no state beyond their
parameters. `scores(proba)` (higher = ask a person first) and `query(proba, n, features,
labeled)` (indices of the `n` rows to ask about, best first). A strategy declares what it
needs: `needs_features` (the text features of the candidates and of labeled tickets, from
`featurize`; router/order.py computes them only then) and `pool` (how many candidates per
pick it looks at). `priorities` turns a query into one number per row, so the queue can keep
the order in its `priority` column (router/order.py owns that order).
`make_strategy(name)` builds the configured strategy exactly as `bench/al_sim.py` and
`bench/loop_sim.py` measure it.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from router.ngrams import hashed


class Strategy:
    """Ranks tickets by how much a person's label would teach the model."""
    name = ""
    needs_features = False   # True: `query` uses `features` and `labeled`
    pool = 4                 # candidates per pick

    def scores(self, proba: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def query(self, proba: np.ndarray, n: int, features=None, rng=None, labeled=None) -> np.ndarray:
        """Indices of the `n` rows to label, best first. `features`: one L2-normalised row per
        row of `proba` (see `featurize`); `labeled`: the same for already labeled tickets;
        both used only by strategies that declare `needs_features`."""
        return np.argsort(-self.scores(proba), kind="stable")[:n]

    def priorities(self, proba: np.ndarray, n: int, features=None, labeled=None) -> np.ndarray:
        """One priority per row, higher first: the `n` rows `query` picks come first, in its
        order (priorities above 1), the rest follow by `scores` (in [0, 1])."""
        out = np.clip(np.asarray(self.scores(proba), dtype=float), 0.0, 1.0)
        picks = np.asarray(self.query(proba, n, features, labeled=labeled), dtype=int)
        out[picks] = 2.0 - np.arange(len(picks)) / max(len(picks), 1)
        return out

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RandomSampling(Strategy):
    name = "random"

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def scores(self, proba):
        return self.rng.random(len(proba))


class LeastConfidence(Strategy):
    """1 - top probability."""
    name = "least_confidence"

    def scores(self, proba):
        return 1.0 - proba.max(axis=1)


class Margin(Strategy):
    """1 - (top - second) probability: the model hesitates between two departments."""
    name = "margin"

    def scores(self, proba):
        if proba.shape[1] < 2:
            return np.zeros(len(proba))
        top2 = np.partition(proba, -2, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])


class Entropy(Strategy):
    """Prediction entropy, scaled to [0, 1]."""
    name = "entropy"

    def scores(self, proba):
        p = np.clip(proba, 1e-12, 1.0)
        return -(p * np.log(p)).sum(axis=1) / np.log(max(proba.shape[1], 2))


def featurize(texts) -> sparse.csr_matrix:
    """L2-normalised character 1-3-gram counts (hashed: no fitting, stable across calls), so
    that `a @ b.T` is the cosine similarity of two tickets. Works for Chinese as it is."""
    return hashed(texts, 1, 3, 20)


class Diverse(Strategy):
    """A base strategy whose picks are spread out: greedy max-min over the base's best
    `pool * n` candidates. Each step takes the candidate with the highest
    score * (1 - similarity to the nearest ticket already picked or already labeled) and
    skips near-duplicates (cosine >= `similarity`) outright.

    `features`: rows of `featurize(texts)` (or any L2-normalised rows) for the candidates;
    `labeled`: the same for tickets that already have labels (optional)."""
    name = "diverse"
    needs_features = True

    def __init__(self, base: Strategy | None = None, similarity: float = 0.8, pool: int = 4,
                 density: float = 0.0, neighbours: int = 10):
        self.base = base or Margin()
        self.similarity = similarity
        self.pool = pool
        self.density = density          # > 0: weight by density**this (typical tickets before outliers)
        self.neighbours = neighbours
        self.name = f"diverse_{self.base.name}"

    def scores(self, proba):
        return self.base.scores(proba)

    def query(self, proba, n, features=None, rng=None, labeled=None):
        scores = self.scores(proba)
        order = np.argsort(-scores, kind="stable")[: max(n * self.pool, n)]
        if features is None or n <= 0:
            return order[:n]
        f = features[order]
        nearest = np.zeros(len(order))
        if labeled is not None and labeled.shape[0]:
            nearest = max_sim(f, labeled)
        value, picked = scores[order], []
        if self.density:
            value = value * _density(f, features, self.neighbours) ** self.density
        alive = np.ones(len(order), bool)
        while len(picked) < n and alive.any():
            v = np.where(alive & (nearest < self.similarity), value * (1.0 - nearest), -np.inf)
            j = int(np.argmax(v))
            if not np.isfinite(v[j]):
                break
            picked.append(j)
            alive[j] = False
            nearest = np.maximum(nearest, max_sim(f, f[[j]]))
        return order[picked]

    def __repr__(self):
        return (f"Diverse({self.base!r}, similarity={self.similarity}, pool={self.pool}, density={self.density}, "
                f"neighbours={self.neighbours})")


class ClassBalanced(Strategy):
    """A base strategy's picks, at most `share * n / classes` per predicted department, so a
    batch covers many confusable pairs instead of piling onto one (topped up from the rest
    of the base's order when too few departments are uncertain)."""
    name = "balanced"

    def __init__(self, base: Strategy | None = None, share: float = 2.0, pool: int = 4):
        self.base = base or Margin()
        self.share = share
        self.pool = pool
        self.needs_features = self.base.needs_features
        self.name = f"balanced_{self.base.name}"

    def scores(self, proba):
        return self.base.scores(proba)

    def query(self, proba, n, features=None, rng=None, labeled=None):
        order = np.asarray(self.base.query(proba, min(len(proba), n * self.pool), features, rng, labeled))
        cap = max(1, int(np.ceil(self.share * n / proba.shape[1])))
        pred = proba[order].argmax(axis=1)
        taken: dict[int, int] = {}
        keep = np.zeros(len(order), bool)
        for i, c in enumerate(pred):
            if taken.get(c, 0) < cap:
                taken[c] = taken.get(c, 0) + 1
                keep[i] = True
                if keep.sum() == n:
                    break
        picks = list(order[keep])
        picks += [j for j in order[~keep]][: n - len(picks)]
        return np.array(picks[:n], dtype=int)

    def __repr__(self):
        return f"ClassBalanced({self.base!r}, share={self.share}, pool={self.pool})"


def _density(a, b, k: int) -> np.ndarray:
    """Mean cosine similarity of each row of `a` to its `k` nearest rows of `b` (itself excluded)."""
    s = a @ b.T
    s = s.toarray() if sparse.issparse(s) else np.asarray(s)
    k = min(k, s.shape[1] - 1)
    if k < 1:
        return np.ones(a.shape[0])
    top = np.partition(s, -(k + 1), axis=1)[:, -(k + 1):-1]
    return np.clip(top.mean(axis=1), 1e-6, None)


def max_sim(a, b) -> np.ndarray:
    """For each row of `a`, the highest cosine similarity to any row of `b`."""
    s = a @ b.T
    s = s.toarray() if sparse.issparse(s) else np.asarray(s)
    return s.max(axis=1) if s.shape[1] else np.zeros(a.shape[0])


STRATEGIES = {
    "least_confidence": LeastConfidence,
    "margin": Margin,
    "entropy": Entropy,
    "balanced": lambda: ClassBalanced(Margin()),
    "diverse": lambda: Diverse(Margin(), density=2.0, pool=8),  # the best of bench/al_sim.py
    "random": RandomSampling,
}


def make_strategy(name: str) -> Strategy:
    """The strategy `[queue] strategy` names, with the parameters the benchmarks measured."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown queue strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()
