"""`router retrain` end to end with the baseline: first model, no-op, lock, gate refusal,
training failure, new corrections picked up; exit codes and the log file."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from router import config, registry
from router.cli import app
from router.store import Label
from tests.conftest import SAMPLE
from training import nightly

runner = CliRunner()


@pytest.fixture
def small(home, tmp_path, monkeypatch):
    """1200 sample tickets to import; a light baseline through router.toml."""
    rows = (SAMPLE / "history.jsonl").read_text(encoding="utf-8").splitlines()[:1200]
    path = tmp_path / "history.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    (tmp_path / "router.toml").write_text("[baseline]\nC = 2.0\nngram_max = 3\nmax_features = 30000\n"
                                          "[retrain]\nmin_new_labels = 50\n")
    return path


def retrain(*args):
    return runner.invoke(app, ["retrain", *args])


def test_retrain_end_to_end(small, home):
    assert runner.invoke(app, ["import", str(small)]).exit_code == 0
    first = retrain()
    assert first.exit_code == nightly.OK, first.output
    assert "promoted" in first.output and "first trained model" in first.output
    log = (home / "logs" / "retrain.log").read_text()
    assert "1200 new labels since the start" in log and "exit 0: promoted" in log

    again = retrain()                                                   # no new labels: nothing to do
    assert again.exit_code == nightly.OK and "nothing to do: 0 new label(s)" in again.output

    # 60 dispatcher corrections arrive: the next run trains, compares and passes the gate
    engine = config_engine()
    rows = [json.loads(x) for x in small.read_text(encoding="utf-8").splitlines()[:60]]
    with Session(engine) as s:
        for r in rows:
            s.add(Label(ticket_id=r["id"], department=r["label"], reviewer="ann", source="correction"))
        s.commit()
    cur = registry.current(engine).version
    third = retrain()
    assert third.exit_code in (nightly.OK, nightly.KEPT), third.output
    newest = registry.versions(engine)[0]
    assert newest.version != cur and newest.data_snapshot["new_labels"] == 60
    assert newest.data_snapshot["since"] is not None                    # replay knew what was new
    assert (registry.current(engine).version == newest.version) == (third.exit_code == nightly.OK)
    assert "macro-F1" in (home / "logs" / "retrain.log").read_text().splitlines()[-1]


def config_engine():
    from router.store import open_store

    return open_store(config.load())


def test_gate_refusal_exits_5(small, home, monkeypatch):
    assert runner.invoke(app, ["import", str(small)]).exit_code == 0
    assert retrain().exit_code == nightly.OK
    monkeypatch.setenv("ROUTER_GATE__MAX_MACRO_F1_DROP", "-1.0")       # demands +1.0 macro-F1: impossible
    res = retrain("--force")
    assert res.exit_code == nightly.KEPT, res.output
    assert "kept" in res.output and "as a candidate" in res.output
    engine = config_engine()
    assert [e.action for e in registry.events(engine)][0] == "kept_candidate"


def test_a_second_run_is_locked_out(small, home, engine):  # engine: the store exists
    cfg = config.load()
    with nightly.lock(config.home(cfg) / "retrain.lock"):
        res = retrain("--force")
    assert res.exit_code == nightly.LOCKED and "another retrain is running" in res.output
    assert "exit 3" in (home / "logs" / "retrain.log").read_text()


def test_lock_is_held_across_processes_and_released_on_exit(home, tmp_path):
    """A real second process: it sees the lock while we hold it, and gets it once we let go."""
    path = home / "retrain.lock"
    home.mkdir(parents=True, exist_ok=True)
    probe = textwrap.dedent(f"""
        from pathlib import Path
        from training import nightly
        try:
            with nightly.lock(Path({str(path)!r})):
                print("got it")
        except nightly.Locked as e:
            print("locked:", e)
    """)
    with nightly.lock(path):
        out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    assert out.startswith("locked:") and "held by pid" in out
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    assert out.strip() == "got it"


def test_training_failure_exits_4(small, home, monkeypatch):
    assert runner.invoke(app, ["import", str(small)]).exit_code == 0
    monkeypatch.setenv("ROUTER_LLM__BASE", str(home / "no-such-model"))
    monkeypatch.setenv("ROUTER_LLM__DEVICE", "cpu")
    res = retrain("--kind", "llm")
    assert res.exit_code == nightly.FAILED, res.output
    assert "training llm failed" in res.output
    assert "Traceback" in (home / "logs" / "retrain.log").read_text()
    assert retrain("--kind", "bogus").exit_code == nightly.USAGE
