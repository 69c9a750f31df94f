"""The LLM router through the CLI: `router zeroshot` registers it, `router classify` routes with it
(exact scoring and --decode generate), on a tiny random Qwen2 on the CPU."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from router import registry
from router.cli import app
from tests.tiny_think import tiny_model
from router.store import Prediction, connect
from sqlmodel import Session, select
from tests.conftest import SAMPLE, read_jsonl, write_jsonl

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, catalog):
    texts = [d.name + "：" + d.duties for d in catalog.departments] + \
        [r["text"] for r in read_jsonl(SAMPLE / "history.jsonl")[:200]]
    return tiny_model(tmp_path_factory.mktemp("tiny") / "qwen2", texts)


@pytest.fixture
def llm_env(home, monkeypatch):
    """CPU, and a short prompt (names without duties) so the tiny model runs in seconds."""
    monkeypatch.setenv("ROUTER_LLM__DEVICE", "cpu")
    monkeypatch.setenv("ROUTER_PROMPT__DEPARTMENT", "{label}. {name}")
    monkeypatch.setenv("ROUTER_PROMPT__MAX_TICKET_TOKENS", "64")
    monkeypatch.setenv("ROUTER_LLM__DECODE", "score")  # restored after the test (--decode sets it)
    return home


def test_zeroshot_then_classify_end_to_end(llm_env, tiny, tmp_path, catalog, cfg, monkeypatch):
    res = runner.invoke(app, ["zeroshot", "--base", str(tiny)])
    assert res.exit_code == 0, res.output
    version = res.stdout.strip().splitlines()[-1]
    engine = connect(f"sqlite:///{llm_env / 'router.db'}")
    mv = registry.current(engine)
    assert mv.version == version and mv.kind == "llm" and mv.base == str(tiny)

    day = write_jsonl(tmp_path / "day.jsonl", read_jsonl(SAMPLE / "day.jsonl")[:5])
    res = runner.invoke(app, ["classify", str(day), "--model", version, "-o", str(tmp_path / "out.jsonl")])
    assert res.exit_code == 0, res.output
    rows = read_jsonl(tmp_path / "out.jsonl")
    assert [r["id"] for r in rows] == [r["id"] for r in read_jsonl(day)]
    assert all(r["department"] in catalog.ids and r["model_version"] == version for r in rows)
    assert all(0 < r["confidence"] <= 1 and len(r["top"]) == cfg.classify.top_k for r in rows)
    with Session(engine) as s:
        assert len(s.exec(select(Prediction).where(Prediction.model_version == version)).all()) == 5

    res = runner.invoke(app, ["classify", str(day), "--model", version, "--decode", "generate",
                              "-o", str(tmp_path / "gen.jsonl")])
    assert res.exit_code == 0, res.output
    gen = read_jsonl(tmp_path / "gen.jsonl")
    assert len(gen) == 5 and all(r["department"] in catalog.ids for r in gen)
    assert "differs from the prompt saved" not in res.stderr

    # an edited [prompt] reaches new versions only: the version keeps its own, and classify says so once
    monkeypatch.setenv("ROUTER_PROMPT__SYSTEM", "你是派单员。")
    res = runner.invoke(app, ["classify", str(day), "--model", version, "-o", str(tmp_path / "edited.jsonl")])
    assert res.exit_code == 0, res.output
    note = " ".join(res.stderr.split())
    assert note.count(f"[prompt] system differs from the prompt saved with {version}") == 1
    assert [r["top"] for r in read_jsonl(tmp_path / "edited.jsonl")] == [r["top"] for r in rows]


def test_zeroshot_calibrates_on_labeled_tickets(llm_env, tiny, tmp_path):
    labeled = write_jsonl(tmp_path / "held.jsonl", read_jsonl(SAMPLE / "test.jsonl")[:12])
    res = runner.invoke(app, ["zeroshot", "--base", str(tiny), "--calibrate", str(labeled)])
    assert res.exit_code == 0, res.output
    assert "ECE" in res.stderr and "temperature" in res.stderr
    mv = registry.current(connect(f"sqlite:///{llm_env / 'router.db'}"))
    assert mv.temperature != 1.0 and 0 <= mv.metrics["accuracy"] <= 1 and "ece" in mv.metrics
    assert json.loads((llm_env / "models" / mv.version / "meta.json").read_text())["temperature"] == mv.temperature


def test_missing_base_model_is_a_clear_error(llm_env, tmp_path):
    res = runner.invoke(app, ["zeroshot", "--base", str(tmp_path / "no-such-model")])
    assert res.exit_code == 2
    msg = " ".join(res.stderr.split())  # rich wraps long lines
    assert "model folder" in msg and "does not exist" in msg and "Traceback" not in res.output
    res = runner.invoke(app, ["classify", "x.jsonl", "--decode", "beam"])
    assert res.exit_code == 2 and "--decode" in res.stderr
