"""Who may sign in to the labeling app: dispatchers' accounts (salted argon2id hashes in the
store, with a role), the sign-in mode, and a growing delay after wrong passwords.

Modes ([labeling] auth):
- accounts: each dispatcher signs in with their own name and password (`router users add`);
- shared_password: any name, one shared password (ROUTER_LABELING__PASSWORD);
- names: any name, no password: a single trusted desk only;
- auto (default): accounts once any exist, else shared_password when a password is set, else names.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlmodel import Session, func, select

from router.config import Auth
from router.store import User, now, retry, writing

ROLES = ("dispatcher", "lead")
MIN_PASSWORD = 8
FREE_FAILURES = 3       # wrong passwords in a row before the delay starts (per name)
IP_FREE_FAILURES = 10   # ... per client address, over all names
MAX_DELAY_S = 300       # the delay doubles with each further failure, up to this

log = logging.getLogger("router.users")
_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile, 16-byte random salt per hash
_dummy: list[str] = []      # a hash to verify against for unknown names, so they cost the same time


class UserError(ValueError):
    """A bad account request (unknown or existing name, bad role, weak password) or sign-in setting."""


def delay(failures: int, free: int = FREE_FAILURES) -> float:
    """Seconds a name must wait after `failures` wrong passwords in a row: 0, 0, 0, 1, 2, 4, ... 300."""
    return 0.0 if failures < free else float(min(2 ** (failures - free), MAX_DELAY_S))


_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def skeleton(name: str) -> str:
    """What a name looks like: NFKC, case-folded, each character mapped to the lowest code point it
    is confusable with (Unicode's confusables, via confusable_homoglyphs): `bоb` (Cyrillic о) and
    `bob` share one."""
    from confusable_homoglyphs.confusables import confusables_data

    out = []
    for c in unicodedata.normalize("NFKC", name).casefold():
        alts = [h["c"] for h in confusables_data.get(c, []) if len(h["c"]) == 1]
        out.append(min([c, *alts], key=ord))
    return "".join(out)


def check_name(name: str, taken=()) -> str:
    """The name, stripped; UserError for control, format or bidi characters, for a name that is not
    NFKC-normal, or one confusable with a name in `taken` (other than itself)."""
    name = name.strip()
    if not name or len(name) > 40 or any(c.isspace() and c != " " for c in name) or not name.isprintable() \
            or any(c in _BIDI or unicodedata.category(c) in ("Cc", "Cf") for c in name):
        raise UserError(f"bad name {name!r}: 1-40 printable characters, no control or bidi characters")
    if unicodedata.normalize("NFKC", name) != name:
        raise UserError(f"bad name {name!r}: write it as {unicodedata.normalize('NFKC', name)!r}")
    mine = skeleton(name)
    for other in taken:
        if other != name and skeleton(other) == mine:
            raise UserError(f"name {name!r} looks like the existing {other!r}; choose another")
    return name


def validate(name: str, role: str, password: str | None) -> str:
    name = check_name(name)
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    return name


def add(engine, name: str, password: str, role: str = "dispatcher") -> User:
    name = validate(name, role, password)
    with Session(engine) as s:
        if s.get(User, name) is not None:
            raise UserError(f"user {name!r} already exists (router users passwd changes the password)")
        check_name(name, s.exec(select(User.name)).all())
        u = User(name=name, password_hash=_hasher.hash(password), role=role)
        s.add(u)
        s.commit()
        s.refresh(u)
        return u


def set_password(engine, name: str, password: str, role: str | None = None) -> User:
    """A new password (and role, when given); clears the failed sign-ins."""
    with Session(engine) as s:
        u = s.get(User, name)
        if u is None:
            raise UserError(f"no user {name!r}")
        validate(name, role or u.role, password)
        u.password_hash, u.failed_sign_ins, u.last_failed_at = _hasher.hash(password), 0, None
        u.role = role or u.role
        s.add(u)
        s.commit()
        s.refresh(u)
        return u


def remove(engine, name: str) -> None:
    """Delete the account and release its claims at once (its labels stay)."""
    from router.store import ItemStatus, QueueItem

    with writing(engine) as s:
        u = s.get(User, name)
        if u is None:
            raise UserError(f"no user {name!r}")
        s.delete(u)
        s.execute(update(QueueItem).where(QueueItem.claimed_by == name, QueueItem.status == ItemStatus.pending)
                  .values(claimed_until=None))
        s.commit()


def all_users(engine) -> list[User]:
    with Session(engine) as s:
        return list(s.exec(select(User).order_by(User.name)))


def get(engine, name: str) -> User | None:
    with Session(engine) as s:
        return s.get(User, name)


def reviewer_name(engine, name: str) -> str:
    """A name typed at sign-in without accounts (names or shared password): UserError when it has
    control or bidi characters or looks like (but is not) a name that already decided tickets."""
    from router.store import Label

    with Session(engine) as s:
        return check_name(name, s.exec(select(Label.reviewer).distinct()).all())


def any_users(engine) -> bool:
    with Session(engine) as s:
        return s.exec(select(func.count()).select_from(User)).one() > 0


class Throttle:
    """In-process failure counts for keys the store does not hold (client addresses, unknown
    names, names under a shared password): the same growing delay as accounts."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock  # seconds; tests freeze it
        self._fails: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: str, free: int = FREE_FAILURES) -> float:
        with self._lock:
            n, last = self._fails.get(key, (0, 0.0))
        return max(0.0, last + delay(n, free) - self.clock()) if n else 0.0

    def reserve(self, key: str, free: int = FREE_FAILURES) -> tuple[float, int]:
        """One step under the lock: (the wait left, failures) while `key` is in its delay, else
        (0, failures) with this try already counted as a failure (`reset` clears it on success)."""
        with self._lock:
            n, last = self._fails.get(key, (0, 0.0))
            left = max(0.0, last + delay(n, free) - self.clock()) if n else 0.0
            if left > 0:
                return left, n
            self._fails[key] = (n + 1, self.clock())
            if len(self._fails) > 100_000:  # bound the memory a flood of names can take
                self._fails.pop(next(iter(self._fails)))
            return 0.0, n + 1

    def failed(self, key: str) -> int:
        with self._lock:
            n = self._fails.get(key, (0, 0.0))[0] + 1
            self._fails[key] = (n, self.clock())
            if len(self._fails) > 100_000:  # bound the memory a flood of names can take
                self._fails.pop(next(iter(self._fails)))
            return n

    def touch(self, key: str) -> None:
        """The delay of `key` runs from now (the end of a failed check)."""
        with self._lock:
            if key in self._fails:
                self._fails[key] = (self._fails[key][0], self.clock())

    def reset(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)


throttle = Throttle()


@dataclass
class SignIn:
    name: str | None = None    # who is signed in (None: refused)
    role: str = "dispatcher"
    wait_s: float = 0.0        # refused without checking: try again after this many seconds


def _refused(name: str, ip: str | None, failures: int, why: str) -> None:
    log.warning("sign-in failed: name=%r ip=%s failures=%d (%s); next try in %.0f s",
                name, ip or "local", failures, why, delay(failures))


def sign_in(engine, name: str, password: str, ip: str | None = None) -> SignIn:
    """Check a dispatcher's own password. Each try is counted as a failure before the password is
    checked, in one step with the check of the delay (a transaction holding the account's row on
    the store; a lock in this process for addresses and unknown names), so parallel tries cannot
    all pass the check; the right password clears the count. While a name (or address) is in its
    delay after wrong passwords, tries are refused unchecked. Failures are logged without the password."""
    name = name.strip()
    ip_wait, _ = throttle.reserve(f"ip:{ip}", IP_FREE_FAILURES) if ip else (0.0, 0)
    if ip_wait > 0:
        return SignIn(wait_s=ip_wait)
    u, wait, failures = _reserve(engine, name)
    if u is None:
        wait, failures = throttle.reserve(f"name:{name}")
    if wait > 0:
        log.warning("sign-in refused: name=%r ip=%s still waiting %.0f s after %d failures",
                    name, ip or "local", wait, failures)
        return SignIn(wait_s=wait)
    if not _dummy:
        _dummy.append(_hasher.hash(os.urandom(16).hex()))
    try:
        ok = _hasher.verify(u.password_hash if u else _dummy[0], password) and u is not None
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok:  # the delay runs from the end of the check
        _failed_now(engine, name) if u is not None else throttle.touch(f"name:{name}")
        if ip:
            throttle.touch(f"ip:{ip}")
        _refused(name, ip, failures, "unknown name" if u is None else "wrong password")
        return SignIn()
    if ip:
        throttle.reset(f"ip:{ip}")
    _signed_in(engine, u, password)
    log.info("signed in: name=%r ip=%s role=%s", name, ip or "local", u.role)
    return SignIn(u.name, u.role)


@retry
def _reserve(engine, name: str) -> tuple[User | None, float, int]:
    """(account, wait left, failures): while the account is in its delay, the wait; else this try
    counted as a failure, in the same transaction (the store's write lock on SQLite, the row's lock
    on PostgreSQL). (None, 0, 0) for an unknown name."""
    with writing(engine) as s:
        u = s.exec(select(User).where(User.name == name).with_for_update()).first()
        if u is None:
            return None, 0.0, 0
        t = now()
        n, last = u.failed_sign_ins, u.last_failed_at
        u = User(name=u.name, password_hash=u.password_hash, role=u.role, failed_sign_ins=n)  # detached
        wait = (last + timedelta(seconds=delay(n)) - t).total_seconds() if n and last else 0.0
        if wait > 0:
            s.rollback()
            return u, wait, n
        s.execute(update(User).where(User.name == name).values(failed_sign_ins=n + 1, last_failed_at=t))
        s.commit()
        return u, 0.0, n + 1


@retry
def _failed_now(engine, name: str) -> None:
    with writing(engine) as s:
        s.execute(update(User).where(User.name == name, User.failed_sign_ins > 0).values(last_failed_at=now()))
        s.commit()


@retry
def _signed_in(engine, u: User, password: str) -> None:
    """Clear the failures (this try's included); re-hash a password stored with older parameters."""
    values = {"failed_sign_ins": 0, "last_failed_at": None}
    if _hasher.check_needs_rehash(u.password_hash):
        values["password_hash"] = _hasher.hash(password)
    with writing(engine) as s:
        s.execute(update(User).where(User.name == u.name).values(**values))
        s.commit()


def check_shared(name: str, given: str, password: str, ip: str | None = None) -> SignIn:
    """Shared-password mode: any name, the one password; the same delay per name and address."""
    import hmac

    name = name.strip()
    ip_wait, _ = throttle.reserve(f"ip:{ip}", IP_FREE_FAILURES) if ip else (0.0, 0)
    wait, failures = (ip_wait, 0) if ip_wait > 0 else throttle.reserve(f"shared:{name}")
    if wait > 0:
        return SignIn(wait_s=wait)
    if hmac.compare_digest(given.encode(), password.encode()):
        throttle.reset(f"shared:{name}")
        if ip:
            throttle.reset(f"ip:{ip}")
        return SignIn(name)
    throttle.touch(f"shared:{name}")
    if ip:
        throttle.touch(f"ip:{ip}")
    _refused(name, ip, failures, "wrong shared password")
    return SignIn()


def auth_mode(cfg, engine, env=None) -> tuple[str, str]:
    """(sign-in mode, shared password) from [labeling] auth and password (the settings read
    ROUTER_LABELING__PASSWORD over router.toml). That variable set but empty is an error, so it
    cannot silently turn off router.toml's password."""
    env = os.environ if env is None else env
    lab = cfg.labeling
    if env.get("ROUTER_LABELING__PASSWORD") == "":
        raise UserError("ROUTER_LABELING__PASSWORD is set but empty: unset it to use [labeling] password "
                        "from router.toml, or set [labeling] auth = \"names\" for names-only sign-in")
    password = lab.password.get_secret_value()
    mode = lab.auth
    if mode == Auth.auto:
        mode = Auth.accounts if any_users(engine) else (Auth.shared_password if password else Auth.names)
    if mode == "shared_password" and not password:
        raise UserError("[labeling] auth = \"shared_password\" needs a password: set ROUTER_LABELING__PASSWORD")
    return mode, password
