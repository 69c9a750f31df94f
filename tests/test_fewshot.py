"""The few-shot block ([prompt] shots): k labeled tickets per department in the shared prefix, on a tiny
random Qwen2 (CPU): the prefix carries them and the ticket's part is unchanged, they are drawn per
department, saved with the version, and `router zeroshot` draws them from the store."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from router import config
from router.cli import app
from router.llm.load import load_model
from router.llm.model import LLMClassifier
from router.llm.prompt import build_prompt, pick_shots
from tests.conftest import SAMPLE, read_jsonl, write_jsonl
from tests.tiny_think import tiny_model

runner = CliRunner()


def test_shots_go_into_the_shared_prefix(tmp_path, catalog):
    rows = read_jsonl(SAMPLE / "history.jsonl")[:400]
    folder = tiny_model(tmp_path / "m", [r["text"] for r in rows[:100]] + [d.name for d in catalog.departments])
    _, tok = load_model(str(folder), device="cpu")
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    shots = pick_shots(texts, labels, 2, seed=1, classes=catalog.ids)
    per = {c: sum(y == c for _, y in shots) for c in set(labels)}
    assert all(n == min(2, labels.count(c)) for c, n in per.items())
    assert [y for _, y in shots] == sorted((y for _, y in shots), key=catalog.ids.index)   # class order
    assert pick_shots(texts, labels, 2, seed=1, classes=catalog.ids) == shots             # seeded

    plain = build_prompt(tok, catalog, config.Prompt())
    few = build_prompt(tok, catalog, config.Prompt(shots=2), shots=shots)
    text, dept = shots[0]
    assert f"工单：{' '.join(text.split())[:80]}\n答：{catalog.ids.index(dept) + 1}" in few.text_prefix
    assert "已派单的工单示例" in few.text_prefix and "已派单的工单示例" not in plain.text_prefix
    assert len(few.prefix) > len(plain.prefix) and few.ticket("小区停水") == plain.ticket("小区停水")
    # a template without {examples}: the block follows the department list
    old = build_prompt(tok, catalog, config.Prompt(user="部门：\n{departments}\n工单：{ticket}"), shots=shots)
    assert old.text_prefix.index("已派单的工单示例") > old.text_prefix.index(catalog.departments[-1].name)


def test_zeroshot_draws_shots_from_the_store_and_saves_them(home, tmp_path, catalog, monkeypatch):
    rows = read_jsonl(SAMPLE / "history.jsonl")[:300]
    folder = tiny_model(tmp_path / "m", [r["text"] for r in rows[:100]] + [d.name for d in catalog.departments])
    monkeypatch.setenv("ROUTER_LLM__DEVICE", "cpu")
    monkeypatch.setenv("ROUTER_PROMPT__DEPARTMENT", "{label}. {name}")
    monkeypatch.setenv("ROUTER_PROMPT__SHOTS", "1")
    assert runner.invoke(app, ["import", str(write_jsonl(tmp_path / "h.jsonl", rows))]).exit_code == 0
    res = runner.invoke(app, ["zeroshot", "--base", str(folder)])
    assert res.exit_code == 0, res.output
    version = res.stdout.strip().splitlines()[-1]
    meta = json.loads((home / "models" / version / "meta.json").read_text())
    n = len({r["label"] for r in rows})
    assert len(meta["shots"]) == n and f"few-shot block: {n} labeled tickets" in res.output
    clf = LLMClassifier.load(home / "models" / version, config.load())
    assert clf.shots == [tuple(x) for x in meta["shots"]] and "已派单的工单示例" in clf.prompt.text_prefix
