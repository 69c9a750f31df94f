"""The `router` CLI end to end: import, train, classify (files, stdin/stdout, resume), models."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from sqlalchemy import func
from sqlmodel import Session, select
from typer.testing import CliRunner

from router.cli import app
from router.store import Prediction, QueueItem, connect
from tests.conftest import SAMPLE, read_jsonl, write_jsonl

runner = CliRunner()


def invoke(*args, input=None):
    res = runner.invoke(app, list(args), input=input)
    return res


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A home with the sample history imported and one trained model (trained once per module)."""
    h = tmp_path_factory.mktemp("template") / "home"
    old = os.environ.get("ROUTER_PATHS__HOME")
    os.environ["ROUTER_PATHS__HOME"] = str(h)
    try:
        assert invoke("import", str(SAMPLE / "history.jsonl")).exit_code == 0
        res = invoke("train")
        assert res.exit_code == 0, res.output
    finally:
        os.environ.pop("ROUTER_PATHS__HOME") if old is None else os.environ.update(ROUTER_PATHS__HOME=old)
    return h


@pytest.fixture
def trained(home, template):
    shutil.copytree(template, home)
    return home


def test_classify_before_training_is_a_clear_error(home):
    res = invoke("classify", str(SAMPLE / "day.jsonl"))
    assert res.exit_code == 2 and "no current model" in res.output


def test_main_job(trained, tmp_path, cfg):
    res = invoke("train")  # a second version stays a candidate
    assert res.exit_code == 0 and "candidate" in res.output
    day = [dict(t) for t in read_jsonl(SAMPLE / "day.jsonl")[:120]]
    src = write_jsonl(tmp_path / "day.jsonl", day)
    with open(src, "a") as f:
        f.write("{not json\n")
    res = invoke("classify", str(src), "--threshold", "0.5")
    assert res.exit_code == 4, res.output  # some lines rejected
    out = read_jsonl(tmp_path / "day.routed.jsonl")
    assert [r["id"] for r in out] == [t["id"] for t in day]
    r = out[0]
    assert set(r) >= {"department", "department_name", "confidence", "top", "model_version"}
    assert len(r["top"]) == 3 and r["top"][0]["department"] == r["department"]
    rejects = read_jsonl(tmp_path / "day.rejects.jsonl")
    assert rejects[0]["line"] == 121 and "malformed JSON" in rejects[0]["reason"]
    assert "routed 120" in res.output and "rejected 1" in res.output
    engine = connect(f"sqlite:///{trained}/router.db")
    with Session(engine) as s:
        assert s.exec(select(func.count()).select_from(Prediction)).one() == 120
        queued = s.exec(select(func.count()).select_from(QueueItem)
                        .where(QueueItem.reason == "low_confidence")).one()
        audits = set(s.exec(select(QueueItem.ticket_id).where(QueueItem.reason == "audit")))
    assert queued == sum(r["confidence"] < 0.5 for r in out)
    assert queued + len(audits) == sum(r["queued"] for r in out)        # audits say queued too
    assert all(r["queued"] for r in out if r["id"] in audits)
    models = invoke("models")
    assert models.exit_code == 0 and "current" in models.output and "candidate" in models.output


def test_stdin_to_stdout(trained):
    lines = "".join(json.dumps({"id": f"s{i}", "text": t}, ensure_ascii=False) + "\n"
                    for i, t in enumerate(["小区停水三天了", "出租车绕路多收钱"]))
    res = runner.invoke(app, ["classify", "-", "-o", "-"], input=lines)
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{")]
    assert [r["id"] for r in rows] == ["s0", "s1"]


def test_promote_and_rollback(trained):
    invoke("train")
    from router import registry
    engine = connect(f"sqlite:///{trained}/router.db")
    first, second = sorted(registry.versions(engine), key=lambda v: v.created_at)
    assert invoke("models", "promote", second.version).exit_code == 0
    assert registry.current(engine).version == second.version
    assert invoke("models", "rollback").exit_code == 0
    assert registry.current(engine).version == first.version
    res = invoke("models", "promote", "nope")
    assert res.exit_code == 2 and "no model version 'nope'" in res.output


def test_resume_after_kill_9(trained, tmp_path):
    base = read_jsonl(SAMPLE / "day.jsonl")
    rows = [dict(t, id=f"{t['id']}-{k}") for k in range(16) for t in base]  # 8,000 tickets
    src = write_jsonl(tmp_path / "big.jsonl", rows)
    with open(src, "a") as f:
        f.write('{"id": "bad"}\n')
    out = tmp_path / "big.routed.jsonl"
    cmd = [sys.executable, "-m", "router.cli", "classify", str(src), "--batch-size", "50"]
    env = dict(os.environ)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or out.stat().st_size < 20000):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(read_jsonl(out)) if out.exists() else 0
    assert 0 < partial < len(rows), "kill landed before or after the run; make the input bigger"
    res = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 4, res.stderr  # routed, one line rejected
    ids = [r["id"] for r in read_jsonl(out)]
    assert Counter(ids).most_common(1)[0][1] == 1                      # never a duplicate line
    assert set(ids) == {r["id"] for r in rows}                         # every ticket routed
    assert [r["line"] for r in read_jsonl(tmp_path / "big.rejects.jsonl")] == [len(rows) + 1]
    engine = connect(f"sqlite:///{trained}/router.db")
    with Session(engine) as s:
        n = s.exec(select(func.count(func.distinct(Prediction.ticket_id)))).one()
        total = s.exec(select(func.count()).select_from(Prediction)).one()
    assert n == total == len(rows)                                     # no duplicate predictions
