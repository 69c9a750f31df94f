"""How alike two tickets read, one measure for incident linking (router/incidents.py) and the queue's
near-duplicate check (router/order.py): the cosine of their character 1-3-gram vectors
(router/strategies.featurize), each n-gram weighted by its inverse document frequency (`Idf`).

The frequencies are counted over the latest `REFERENCE` stored tickets and the tickets of the run: the
greetings and set phrases every long message repeats (您好, 我也知道你们工作忙, 请尽快处理) weigh nothing,
so two unrelated long tickets do not read alike, while a repeat of one matter (the same street, the same
burst pipe) still does.
"""

from __future__ import annotations

import numpy as np
from sqlmodel import Session, select

from router.ngrams import normalize
from router.store import Ticket
from router.strategies import featurize

REFERENCE = 2000   # stored tickets the n-grams' document frequencies start from
FEW = 100          # ... counted as if over at least this many tickets


class Idf:
    """Document frequencies for a routing run, shared by linking and the near-duplicate check: the latest
    REFERENCE stored tickets (read at the first call), then each ticket of the run once, as either step
    featurizes it."""

    def __init__(self):
        self.df, self.n = None, 0          # per n-gram column: in how many of `n` tickets it occurs
        self.seen: set[str] = set()
        self.keep_first = False            # keep `first`: (ids, features) of the stored tickets counted first
        self.first = None                  # (incidents.Window takes them: it would featurize them again)

    def weights(self, session: Session, ids: list[str], f) -> np.ndarray:
        """Per column, log((n + 1) / (df + 1)), the tickets `ids` (rows of `f`) counted in: 0 for an n-gram
        in every ticket. n is at least FEW: a handful of tickets says little about which n-grams are common."""
        self.count(session, ids, f)
        return self.at(slice(None))

    def count(self, session: Session, ids: list[str], f) -> None:
        """Count the tickets `ids` (rows of `f`) in, those not counted yet (`weights`)."""
        if self.df is None:
            from router.classifier import model_input

            self.df = np.zeros(f.shape[1], np.float32)
            seed = session.exec(select(Ticket.id, Ticket.text, Ticket.title).where(Ticket.id.not_in(ids))
                                .order_by(Ticket.received_at.desc()).limit(REFERENCE)).all()
            if seed:
                f0 = featurize([model_input(t, h) for _, t, h in seed])
                self._count(f0)
                self.first = ([r[0] for r in seed], f0) if self.keep_first else None
        new = [k for k, t in enumerate(ids) if t not in self.seen]
        if new:
            self.seen.update(ids[k] for k in new)
            self._count(f[new] if len(new) < len(ids) else f)

    def at(self, cols) -> np.ndarray:
        """The weights of the columns `cols` only (as `weights` gives them)."""
        return np.log((max(self.n, FEW) + 1) / (self.df[cols] + 1)).astype(np.float32)

    def _count(self, f) -> None:
        self.df += np.bincount(f.indices, minlength=len(self.df)).astype(np.float32)
        self.n += f.shape[0]


def weighted(X, w: np.ndarray):
    """`X`'s columns scaled by `w`, rows L2-normalised again (a new matrix: `X` is left as it is): the
    rows' products are the weighted cosines."""
    from scipy import sparse

    return normalize(sparse.csr_matrix((X.data * w[X.indices], X.indices, X.indptr), shape=X.shape))


def cosine(a, b, w: np.ndarray) -> np.ndarray:
    """The weighted cosine of each row of `a` with each row of `b` (features of `featurize`), dense."""
    s = weighted(a, w) @ weighted(b, w).T
    return s.toarray() if hasattr(s, "toarray") else np.asarray(s)
