"""Replay: what a retrain learns from.

New labels (given since the last trained version) are mixed with a sample of the older
labeled tickets so that the model does not forget what it knew (like the seed recipe's
`dataset#500` mixing), and new dispatcher decisions can count more than once.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone

from router.store import Source
from training.data import Labeled


def _aware(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t


def mix(data: Labeled, since: datetime | None, old_sample: int = 0, recent_weight: int = 1,
        weighted_sources=(Source.correction, Source.audit), seed: int = 42, wrong_weight: int = 1) -> Labeled:
    """Training tickets for one run.

    since:          labels given after this time are new (None: everything is new)
    old_sample:     how many older tickets to replay; 0 replays all of them
    recent_weight:  new labels from `weighted_sources` appear this many times
    wrong_weight:   tickets with a known wrong department (an upheld return: the model's confident
                    mistake) appear this many times, new or old: hard examples
    """
    since = _aware(since)
    new = [i for i, t in enumerate(data.times) if since is None or (t is not None and _aware(t) > since)]
    new_set = set(new)
    old = [i for i in range(len(data)) if i not in new_set]
    if old_sample and len(old) > old_sample:
        old = sorted(random.Random(seed).sample(old, old_sample))
    idx = old + new
    idx += [i for i in new if data.sources[i] in weighted_sources] * max(0, int(recent_weight) - 1)
    idx += [i for i in old + new if data.wrong[i]] * max(0, int(wrong_weight) - 1)
    return data.subset(idx)
