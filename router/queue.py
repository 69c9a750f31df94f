"""The review queue: which routed tickets a dispatcher sees, in which order.

Query strategies are small objects in the style of small-text: `scores(proba)` (higher = ask
a person first) and `query(proba, n, features)` (indices of the `n` rows to ask about).

`enqueue` is called by `router classify` after each batch. Tickets below the confidence
threshold go in with the strategy's score as priority; a near-duplicate of a ticket already
waiting (same burst pipe, same street) gets its priority cut, so one incident does not fill
the queue. A small random sample of confident tickets goes in as an `audit` (labels on an
unbiased sample: the measured accuracy of confident predictions). The daily budget keeps at
most `budget` low-confidence tickets of a day pending: the lowest priorities are dropped
(status `over_budget`), so across batches the day's queue holds its best `budget` tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import HashingVectorizer
from sqlalchemy import func, update
from sqlmodel import Session, select

from router.store import QueueItem, Ticket, now


# ---- query strategies -------------------------------------------------------------------

class Strategy:
    """Ranks tickets by how much a person's label would teach the model."""
    name = ""

    def scores(self, proba: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def query(self, proba: np.ndarray, n: int, features=None, rng=None, labeled=None) -> np.ndarray:
        """Indices of the `n` rows to label, best first. `features`: one L2-normalised row per
        row of `proba` (see `featurize`); `labeled`: the same for already labeled tickets;
        both used by the diversity-aware strategies only."""
        return np.argsort(-self.scores(proba), kind="stable")[:n]

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
    vec = HashingVectorizer(analyzer="char_wb", ngram_range=(1, 3), n_features=2 ** 20,
                            alternate_sign=False, norm="l2")
    return vec.transform([t or "" for t in texts])


class Diverse(Strategy):
    """A base strategy whose picks are spread out: greedy max-min over the base's best
    `pool * n` candidates. Each step takes the candidate with the highest
    score * (1 - similarity to the nearest ticket already picked or already labeled) and
    skips near-duplicates (cosine >= `similarity`) outright.

    `features`: rows of `featurize(texts)` (or any L2-normalised rows) for the candidates;
    `labeled`: the same for tickets that already have labels (optional)."""
    name = "diverse"

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
            nearest = _max_sim(f, labeled)
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
            nearest = np.maximum(nearest, _max_sim(f, f[[j]]))
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


def _max_sim(a, b) -> np.ndarray:
    """For each row of `a`, the highest cosine similarity to any row of `b`."""
    s = a @ b.T
    s = s.toarray() if sparse.issparse(s) else np.asarray(s)
    return s.max(axis=1) if s.shape[1] else np.zeros(a.shape[0])


STRATEGIES = {"least_confidence": LeastConfidence, "margin": Margin, "entropy": Entropy, "balanced": ClassBalanced,
              "diverse": Diverse, "random": RandomSampling}


def make_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown queue strategy {name!r}; known: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()


# ---- the queue in the store -------------------------------------------------------------

@dataclass
class Policy:
    """How `enqueue` fills the queue; built from the [queue] config section by `policy(cfg)`."""
    threshold: float = 0.6
    strategy: str = "diverse"
    daily_budget: int = 0                # 0 = no limit
    audit_rate: float = 0.02             # share of confident tickets queued as audits
    duplicate_similarity: float = 0.8    # cosine of char n-grams above which tickets are near-duplicates
    duplicate_discount: float = 0.2      # a near-duplicate's priority is multiplied by this
    duplicate_window: int = 2000         # compare against this many newest pending tickets
    timezone: str = "Asia/Shanghai"      # where "today" is (budget, counts)
    seed: int | None = None              # audit sampling seed (None = fresh randomness)


def policy(cfg, **over) -> Policy:
    q = dict(cfg.get("queue", {}))
    keys = Policy.__dataclass_fields__
    p = Policy(**{k: v for k, v in q.items() if k in keys})
    if "threshold" not in q and "classify" in cfg:
        p.threshold = cfg.classify.threshold
    for k, v in over.items():
        if v is not None:
            setattr(p, k, v)
    return p


def day_start(tz: str, at: datetime | None = None) -> datetime:
    """Midnight of the current day in `tz`, as an aware datetime."""
    zone = ZoneInfo(tz)
    local = (at or now()).astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone)


def enqueue(session: Session, ticket_ids, proba: np.ndarray, prediction_ids, threshold: float | None = None,
            texts=None, pol: Policy | None = None) -> int:
    """Queue the tickets of one routed batch; returns how many low-confidence tickets went in
    (audits not counted). `texts` enables the near-duplicate check (loaded from the store
    when not given)."""
    if pol is None:
        from router import config
        pol = policy(config.load())
    if threshold is not None:
        pol = Policy(**{**pol.__dict__, "threshold": threshold})
    ticket_ids, prediction_ids = list(ticket_ids), list(prediction_ids)
    if not ticket_ids:
        return 0
    conf = proba.max(axis=1)
    low = np.flatnonzero(conf < pol.threshold)
    rng = np.random.default_rng(pol.seed)
    audit = [i for i in np.flatnonzero(conf >= pol.threshold) if rng.random() < pol.audit_rate]
    for i in audit:
        session.add(QueueItem(ticket_id=ticket_ids[i], prediction_id=prediction_ids[i], reason="audit",
                              priority=float(rng.random())))
    if not len(low):
        return 0
    priority = _priorities(session, pol, [ticket_ids[i] for i in low], proba[low], texts and [texts[i] for i in low])
    for i, pr in zip(low, priority):
        session.add(QueueItem(ticket_id=ticket_ids[i], prediction_id=prediction_ids[i],
                              reason="low_confidence", priority=float(pr)))
    session.flush()
    dropped = trim_to_budget(session, pol)
    return len(low) - dropped


def _priorities(session, pol: Policy, ids, proba, texts) -> np.ndarray:
    strategy = make_strategy(pol.strategy)
    scores = np.asarray(strategy.scores(proba), dtype=float)
    if not isinstance(strategy, Diverse) or pol.duplicate_discount >= 1:
        return scores
    if texts is None:
        got = dict(session.exec(select(Ticket.id, Ticket.text).where(Ticket.id.in_(ids))).all())
        texts = [got.get(t, "") for t in ids]
    f = featurize(texts)
    order = np.argsort(-scores, kind="stable")  # within the batch, the most uncertain copy stays
    ref = _waiting(session, pol.duplicate_window)
    out = scores.copy()
    for rank, j in enumerate(order):
        sims = [_max_sim(f[j], ref)[0]] if ref is not None else []
        if rank:
            sims.append(_max_sim(f[j], f[order[:rank]])[0])
        if sims and max(sims) >= pol.duplicate_similarity:
            out[j] *= pol.duplicate_discount
    return out


_features: dict[str, dict[int, sparse.csr_matrix]] = {}  # store url -> queue item id -> featurize row


def _waiting(session: Session, window: int):
    """Features of the newest `window` pending low-confidence tickets (None if there are none);
    rows are cached per queue item, so a long classify run featurizes each ticket once."""
    rows = session.exec(
        select(QueueItem.id, Ticket.text).join(Ticket, QueueItem.ticket_id == Ticket.id)
        .where(QueueItem.status == "pending", QueueItem.reason == "low_confidence")
        .order_by(QueueItem.id.desc()).limit(window)).all()
    if not rows:
        return None
    old = _features.get(str(session.get_bind().url), {})
    new = [(i, t) for i, t in rows if i not in old]
    if new:
        f = featurize([t for _, t in new])
        old.update((i, f[k]) for k, (i, _) in enumerate(new))
    cache = {i: old[i] for i, _ in rows}  # forget tickets that left the window
    _features[str(session.get_bind().url)] = cache
    return sparse.vstack(list(cache.values()), format="csr")


def trim_to_budget(session: Session, pol: Policy) -> int:
    """Keep at most `daily_budget` of today's low-confidence items queued (pending or worked
    on); the lowest-priority pending ones become `over_budget`. Returns how many were dropped."""
    if not pol.daily_budget:
        return 0
    since = day_start(pol.timezone)
    today = (QueueItem.reason == "low_confidence") & (QueueItem.created_at >= since)
    kept = session.exec(select(func.count()).select_from(QueueItem)
                        .where(today, QueueItem.status != "over_budget")).one()
    excess = kept - pol.daily_budget
    if excess <= 0:
        return 0
    unclaimed = (QueueItem.claimed_until == None) | (QueueItem.claimed_until < now())  # noqa: E711
    worst = session.exec(select(QueueItem.id).where(today, QueueItem.status == "pending", unclaimed)
                         .order_by(QueueItem.priority, QueueItem.id.desc()).limit(excess)).all()
    session.execute(update(QueueItem).where(QueueItem.id.in_(worst)).values(status="over_budget"))
    return len(worst)
