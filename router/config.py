"""One place for configuration: embedded defaults, a TOML file, then environment overrides."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from router import ROOT

DEFAULTS = Path(__file__).with_name("defaults.toml")
ENV_PREFIX = "ROUTER_"


class Section(dict):
    """A dict whose keys read as attributes: cfg.store.url."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}") from None


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _parse(value: str) -> Any:
    """Environment values are TOML literals when they parse (numbers, booleans, lists), else strings."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def _sections(d: dict) -> Section:
    return Section({k: _sections(v) if isinstance(v, dict) else v for k, v in d.items()})


def load(path: str | Path | None = None, env: dict[str, str] | None = None) -> Section:
    env = os.environ if env is None else env
    cfg = tomllib.loads(DEFAULTS.read_text())
    path = path or env.get("ROUTER_CONFIG") or ("router.toml" if Path("router.toml").exists() else None)
    if path:
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"config file {p} does not exist")
        try:
            cfg = _merge(cfg, tomllib.loads(p.read_text()))
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"config file {p}: {e}") from None
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        cfg.setdefault(section, {})[key] = _parse(value)
    return _sections(cfg)


def resolve(p: str | Path) -> Path:
    """Relative paths in config name files in the checkout (data/) or under the working directory."""
    p = Path(p)
    if p.is_absolute() or p.exists():
        return p
    return ROOT / p if (ROOT / p).exists() else p


def home(cfg: Section) -> Path:
    h = Path(cfg.paths.home)
    h.mkdir(parents=True, exist_ok=True)
    return h


def store_url(cfg: Section) -> str:
    return cfg.store.url or f"sqlite:///{home(cfg) / 'router.db'}"
