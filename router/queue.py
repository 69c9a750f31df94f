"""The review queue: which routed tickets a dispatcher sees.

`enqueue` is called by `router classify` after each batch: tickets below the confidence
threshold go in with a priority (most uncertain first).
"""

from __future__ import annotations

import numpy as np
from sqlmodel import Session

from router.store import QueueItem


def enqueue(session: Session, ticket_ids, proba: np.ndarray, prediction_ids, threshold: float) -> int:
    """Add tickets whose top probability is below `threshold`; returns how many were added."""
    conf = proba.max(axis=1)
    n = 0
    for tid, pid, c in zip(ticket_ids, prediction_ids, conf):
        if c < threshold:
            session.add(QueueItem(ticket_id=tid, prediction_id=pid, reason="low_confidence",
                                  priority=float(1 - c)))
            n += 1
    return n
