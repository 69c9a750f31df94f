"""Several processes (router/parallel.py) on the CPU: 2 gloo processes started by torchrun give the
output of one process. `router classify` with the baseline and the tiny LLM (the output file and the
store's predictions and queue, identical), `--resume` after an interrupted 2-process run,
`router retrain --kind llm` with DDP (one version, the effective batch logged), the retrain lock
(every rank exits 3), and one DDP optimizer step equal to one process's, shared prefix or not."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from bench.multi_gpu import free_port, launch
from router import ROOT, parallel
from router.cli import app
from tests.conftest import SAMPLE, read_jsonl, write_jsonl
from tests.tiny_think import tiny_model
from training import nightly

runner = CliRunner()
BASE_ENV = {"ROUTER_QUEUE__SEED": "7",                  # the audit sample: the same draw in every run
            "ROUTER_LLM__DEVICE": "cpu", "ROUTER_LLM__DECODE": "score", "ROUTER_LLM__BATCH_SIZE": "4",
            "ROUTER_PROMPT__DEPARTMENT": "{label}. {name}", "ROUTER_PROMPT__MAX_TICKET_TOKENS": "64"}


def env_for(home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    env.update(BASE_ENV, ROUTER_PATHS__HOME=str(home), PYTHONPATH=str(ROOT), **extra)
    return env


def torchrun(args: list[str], home: Path, cwd: Path, **extra) -> subprocess.CompletedProcess:
    """`torchrun --nproc-per-node 2 -m router.cli ARGS` with this venv's python."""
    return subprocess.run(launch(2, args), env=env_for(home, **extra), cwd=cwd, capture_output=True, text=True, timeout=300)


def one(args: list[str], home: Path, monkeypatch, **extra):
    """The same command in this process (one process, no launcher)."""
    for k in [k for k in os.environ if k.startswith("ROUTER_")]:
        monkeypatch.delenv(k)
    for k, v in env_for(home, **extra).items():
        if k.startswith("ROUTER_"):
            monkeypatch.setenv(k, v)
    return runner.invoke(app, args)


def rows(home: Path) -> dict:
    """The store's predictions and queue items, without ids and times."""
    with sqlite3.connect(home / "router.db") as c:
        return {"predictions": c.execute("select ticket_id, model_version, department, confidence, topk "
                                         "from prediction order by ticket_id").fetchall(),
                "queue": c.execute("select q.ticket_id, q.reason, q.priority, q.status, p.department "
                                   "from queueitem q join prediction p on p.id = q.prediction_id "
                                   "order by q.ticket_id").fetchall(),
                "tickets": c.execute("select id, text from ticket order by id").fetchall()}


def copies(src: Path, tmp: Path, *names: str) -> list[Path]:
    out = []
    for n in names:
        shutil.copytree(src, tmp / n)
        out.append(tmp / n)
    return out


def test_effective_batch_rule():
    assert [parallel.accumulation(8, n) for n in (1, 2, 3, 4, 16)] == [8, 4, 3, 2, 1]
    assert parallel.batch_note(2, 8, 2).endswith("= 16 (as on one process)")
    assert "2 x 2 x 2 = 8 (one process: 6; 3 is not a multiple of 2)" in parallel.batch_note(2, 3, 2)


def test_classify_baseline_two_processes_match_one(tmp_path, monkeypatch):
    hist = write_jsonl(tmp_path / "hist.jsonl", read_jsonl(SAMPLE / "history.jsonl")[:800])
    (tmp_path / "router.toml").write_text("[baseline]\nmax_features = 20000\n")
    monkeypatch.chdir(tmp_path)
    trained = one(["train", "--data", str(hist)], tmp_path / "h0", monkeypatch)
    assert trained.exit_code == 0, trained.output
    h1, h2 = copies(tmp_path / "h0", tmp_path, "h1", "h2")
    day = SAMPLE / "day.jsonl"
    res = one(["classify", str(day), "-o", str(tmp_path / "one.jsonl"), "--batch-size", "100"], h1, monkeypatch)
    assert res.exit_code == 0, res.output
    run = torchrun(["classify", str(day), "-o", str(tmp_path / "two.jsonl"), "--batch-size", "100"], h2, tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "routed 500" in run.stderr and run.stderr.count("routed 500") == 1  # rank 0 alone reports
    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    got, want = rows(h2), rows(h1)
    assert len(want["predictions"]) == 500 and want["queue"]
    assert got == want
    # rank 0 fails before routing (no such file): the other rank is told to stop, nothing hangs
    bad = torchrun(["classify", str(tmp_path / "missing.jsonl")], h2, tmp_path)
    assert bad.returncode == 1 and "exitcode  : 2" in bad.stderr and "missing.jsonl" in bad.stderr, bad.stderr


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, catalog):
    texts = [d.name + "：" + d.duties for d in catalog.departments] + \
        [r["text"] for r in read_jsonl(SAMPLE / "history.jsonl")[:200]]
    return tiny_model(tmp_path_factory.mktemp("tiny") / "qwen2", texts)


def test_classify_llm_two_processes_match_one_and_resume(tmp_path, tiny, monkeypatch):
    """Scores identical to the bit: each process gets whole scorer batches (LLMClassifier.shards).
    The 2-process run is interrupted after 40 tickets (its output and store hold them), then resumed."""
    monkeypatch.chdir(tmp_path)
    res = one(["zeroshot", "--base", str(tiny)], tmp_path / "z0", monkeypatch)
    assert res.exit_code == 0, res.output
    h1, h2 = copies(tmp_path / "z0", tmp_path, "h1", "h2")
    lines = (SAMPLE / "day.jsonl").read_text(encoding="utf-8").splitlines()[:59]
    lines.insert(50, '{"id": "bad", "text": ')                          # a damaged line: a reject
    day = tmp_path / "day.jsonl"
    day.write_text("\n".join(lines) + "\n", encoding="utf-8")
    head = tmp_path / "head.jsonl"
    head.write_text("\n".join(lines[:40]) + "\n", encoding="utf-8")
    opts = ["--batch-size", "20"]                                       # 5 scorer batches of 4 per call

    res = one(["classify", str(day), "-o", str(tmp_path / "one.jsonl"), *opts], h1, monkeypatch)
    assert res.exit_code == 4, res.output                                # some lines rejected

    first = torchrun(["classify", str(head), "-o", str(tmp_path / "two.jsonl"), *opts], h2, tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert len(read_jsonl(tmp_path / "two.jsonl")) == 40
    again = torchrun(["classify", str(day), "-o", str(tmp_path / "two.jsonl"), "--resume", *opts], h2, tmp_path)
    # torchrun exits 1 when a process fails; its report names rank 0's own exit code
    assert again.returncode == 1 and "exitcode  : 4" in again.stderr, again.stderr[-3000:]
    assert "skipped 40 already done" in again.stderr and "rejected 1" in again.stderr

    assert (tmp_path / "two.jsonl").read_bytes() == (tmp_path / "one.jsonl").read_bytes()
    assert (tmp_path / "two.rejects.jsonl").read_bytes() == (tmp_path / "one.rejects.jsonl").read_bytes()
    got, want = rows(h2), rows(h1)
    assert len(want["predictions"]) == 59 and want["queue"]
    assert got == want


@pytest.fixture
def labeled_home(tmp_path, tiny, monkeypatch):
    """120 labeled tickets in a fresh store; the tiny LLM as [llm] base, 3 training steps."""
    hist = write_jsonl(tmp_path / "hist.jsonl", read_jsonl(SAMPLE / "history.jsonl")[:120])
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    assert one(["import", str(hist)], home, monkeypatch).exit_code == 0
    return home


TRAIN = {"ROUTER_SFT__MAX_STEPS": "3", "ROUTER_SFT__BATCH_SIZE": "2",
         "ROUTER_SFT__GRAD_ACCUM": "3", "ROUTER_SFT__LORA_R": "4", "ROUTER_SFT__LORA_ALPHA": "8",
         "ROUTER_SFT__GRADIENT_CHECKPOINTING": "false", "ROUTER_SFT__MAX_SEQ": "2048"}


def test_retrain_llm_with_ddp(labeled_home, tiny, tmp_path):
    home = labeled_home
    run = torchrun(["retrain", "--kind", "llm"], home, tmp_path, **{**TRAIN, "ROUTER_LLM__BASE": str(tiny)})
    assert run.returncode == 0, run.stderr[-3000:]
    log = (home / "logs" / "retrain.log").read_text()
    assert "DDP over 2 processes: gradient accumulation 3 -> 2, effective batch 2 x 2 x 2 = 8 " \
           "(one process: 6; 3 is not a multiple of 2)" in log
    assert log.count("retrain llm: 120 new labels") == 1 and log.count("exit 0: promoted") == 1  # rank 0 alone
    with sqlite3.connect(home / "router.db") as c:
        versions = c.execute("select version, kind, status, path from modelversion").fetchall()
    assert len(versions) == 1 and versions[0][1:3] == ("llm", "current")
    assert (Path(versions[0][3]) / "adapter" / "adapter_model.safetensors").exists()


def test_retrain_lock_stops_every_rank(labeled_home, tiny, tmp_path):
    """The processes torchrun would start (RANK, WORLD_SIZE, ...), launched by hand to see each exit code:
    torchrun itself reports only the first failure."""
    home = labeled_home
    env = env_for(home, **{**TRAIN, "ROUTER_LLM__BASE": str(tiny)}, MASTER_ADDR="127.0.0.1",
                  MASTER_PORT=str(free_port()), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "router.cli", "retrain", "--kind", "llm"]
    with nightly.lock(home / "retrain.lock"):
        procs = [subprocess.Popen(cmd, env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, cwd=tmp_path,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in (0, 1)]
        outs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [nightly.LOCKED] * 2, [o[1][-2000:] for o in outs]
    assert "another retrain is running" in outs[0][1]
    with sqlite3.connect(home / "router.db") as c:
        assert c.execute("select count(*) from modelversion").fetchone() == (0,)
    assert "exit 3: another retrain is running" in (home / "logs" / "retrain.log").read_text()


def test_ddp_step_equals_one_process_step(tmp_path, catalog):
    """One optimizer step over the whole (16-example) set: 2 DDP processes give one process's loss,
    gradient norm and weights, with the shared-prefix trick (PrefixSFTTrainer) and without it."""
    from tests import tiny_llm
    from tests.test_training_sft import CLASSES, FILLER, KEYS

    corpus = [t for c in CLASSES for t in (KEYS[c], catalog.name(c))] + ["".join(FILLER), "派单。部门：工单："] * 3
    model = tiny_llm.build(tmp_path / "model", corpus)
    script, out = ROOT / "tests" / "ddp_sft.py", tmp_path / "out"
    env = env_for(tmp_path / "home", OMP_NUM_THREADS="1")
    for cmd in (launch(n, [str(script), str(model), str(out)], module=False) for n in (2, 1)):
        res = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
    for share in (True, False):
        first = [json.loads((out / f"first-{n}-{share}-{r}.json").read_text()) for n, r in ((1, 0), (2, 0), (2, 1))]
        assert first[1] == first[2]
        assert first[1]["loss"] == pytest.approx(first[0]["loss"], rel=1e-6)
        assert first[1]["grad_norm"] == pytest.approx(first[0]["grad_norm"], rel=1e-5)
        w1, w2a, w2b = (torch.load(out / f"weights-{n}-{share}-{r}.pt") for n, r in ((1, 0), (2, 0), (2, 1)))
        assert w1.keys() == w2a.keys() and len(w1) > 0
        assert all(torch.equal(w2a[k], w2b[k]) for k in w1)                 # DDP kept the ranks in step
        assert max((w2a[k] - w1[k]).abs().max().item() for k in w1) < 1e-5
