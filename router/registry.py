"""Model registry: each trained model is a version in the store, with status
candidate / current / retired. Exactly one version is current; switching is one transaction.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from sqlmodel import Session, select

from router import classifier
from router.config import Settings
from router.store import Action, ModelEvent, ModelVersion, VersionStatus, now


class NoModelError(RuntimeError):
    pass


def new_version(kind: str) -> str:
    return f"{kind}-{datetime.now(timezone.utc):%Y%m%d-%H%M%S-%f}"[:-3]


def register(engine, mv: ModelVersion) -> ModelVersion:
    """Add version `mv`; its `temperature` is copied from its saved model (meta.json holds the one
    the model uses)."""
    meta = Path(mv.path) / "meta.json"
    if meta.exists():
        mv.temperature = float(json.loads(meta.read_text()).get("temperature", 1.0))
    with Session(engine) as s:
        s.add(mv)
        s.commit()
        s.refresh(mv)
    return mv


def current(engine) -> ModelVersion | None:
    with Session(engine) as s:
        return s.exec(select(ModelVersion).where(ModelVersion.status == VersionStatus.current)).first()


def get(engine, version: str) -> ModelVersion | None:
    with Session(engine) as s:
        return s.get(ModelVersion, version)


def versions(engine) -> list[ModelVersion]:
    with Session(engine) as s:
        return list(s.exec(select(ModelVersion).order_by(ModelVersion.created_at.desc())))


def events(engine) -> list[ModelEvent]:
    with Session(engine) as s:
        return list(s.exec(select(ModelEvent).order_by(ModelEvent.created_at.desc())))


def record(engine, version: str, action: str, reason: str = "") -> None:
    with Session(engine) as s:
        s.add(ModelEvent(version=version, action=action, reason=reason))
        s.commit()


def promote(engine, version: str, reason: str = "", action: str = Action.promoted) -> ModelVersion:
    """Make `version` current and retire the old current one, atomically."""
    with Session(engine) as s:
        mv = s.get(ModelVersion, version)
        if mv is None:
            raise NoModelError(f"no model version {version!r}; see `router models`")
        if not Path(mv.path).exists():
            raise NoModelError(f"model version {version} has no files at {mv.path}")
        for old in s.exec(select(ModelVersion).where(ModelVersion.status == VersionStatus.current)):
            if old.version != version:
                old.status = VersionStatus.retired
                s.add(old)
        mv.status, mv.promoted_at = VersionStatus.current, now()
        s.add(mv)
        s.add(ModelEvent(version=version, action=action, reason=reason))
        s.commit()
        s.refresh(mv)
        return mv


def rollback(engine, reason: str = "manual rollback") -> ModelVersion:
    """Make the previously promoted version current again."""
    with Session(engine) as s:
        cur = s.exec(select(ModelVersion).where(ModelVersion.status == VersionStatus.current)).first()
        q = select(ModelVersion).where(ModelVersion.promoted_at.is_not(None))
        if cur is not None:
            q = q.where(ModelVersion.version != cur.version)
        prev = s.exec(q.order_by(ModelVersion.promoted_at.desc())).first()
    if prev is None:
        raise NoModelError("no earlier promoted version to roll back to")
    return promote(engine, prev.version, reason, action=Action.rolled_back)


LEGACY_THRESHOLD = 0.6   # "auto" for a version trained before it had its own


def threshold(cfg, mv: ModelVersion | None) -> tuple[float, str]:
    """The confidence threshold in force for version `mv` and where it comes from: an explicit
    `[classify] threshold`, else the version's own (fitted in training to `[classify] target_accuracy`)."""
    t = cfg.classify.threshold
    if t != "auto":
        return float(t), "[classify] threshold"
    fitted = ((mv.config or {}).get("classify") or {}) if mv is not None else {}
    if fitted.get("threshold") is None:
        return LEGACY_THRESHOLD, "default (this version has no fitted threshold)"
    if fitted.get("expected_accuracy") is None:
        return float(fitted["threshold"]), f"fitted: no confidence reaches {fitted['target_accuracy']:.0%}, all reviewed"
    return float(fitted["threshold"]), (f"fitted: {fitted['expected_accuracy']:.1%} right at or above it, "
                                        f"{fitted['source']} (target {fitted['target_accuracy']:.0%})")


def load(engine, version: str | None, cfg: Settings) -> tuple[ModelVersion, classifier.Classifier]:
    """The model of `version`, or the current one (None); a clear error when there is none. `cfg`
    (the settings) says how to run it."""
    mv = get(engine, version) if version else current(engine)
    if mv is None:
        raise NoModelError(f"no model version {version!r}; see `router models`" if version else
                           "no current model: train one first with `router train`")
    return mv, classifier.load(mv.path, cfg)
