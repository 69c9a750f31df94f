"""Incremental LLM retraining ([sft] incremental, replay, budget_minutes) on a tiny random Qwen2 (CPU):
the warm start goes on from the previous adapter, trains on the new pairs plus a replay sample, stops
at the time budget (an injected clock), and `router retrain --kind llm` records where it started."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from router import config, registry
from router.catalog import Catalog
from router.llm import sft
from router.llm.model import TRAINED_ON, LLMClassifier, pair_keys
from tests import tiny_llm
from tests.conftest import SAMPLE, import_and_train, invoke, read_jsonl, write_jsonl
from tests.test_training_sft import CLASSES, FAST, Record, make, tiny  # noqa: F401 (tiny: fixture)


@pytest.fixture
def tcfg(cfg):
    c = cfg.model_copy(deep=True)
    c.prompt = config.Prompt(**tiny_llm.PROMPT)
    c.llm.device = "cpu"
    c.sft = sft.settings(c, **{**FAST, "max_steps": 2, "batch_size": 4, "incremental": True, "replay": 5})
    return c


def llm(tiny, tcfg, catalog, **sft_overrides) -> LLMClassifier:
    c = tcfg.model_copy(deep=True)
    c.sft = sft.settings(c, **sft_overrides)
    sub = Catalog([catalog.by_id[k] for k in CLASSES], city=catalog.city)
    return LLMClassifier.from_settings(c, CLASSES, sub, base=str(tiny), device="cpu")


def lora_b(adapter) -> dict:
    w = load_file(str(adapter) + "/adapter_model.safetensors")
    return {k: v for k, v in w.items() if "lora_B" in k}


def test_budget_stops_training_by_the_clock(tiny, catalog, tcfg, tmp_path):
    ticks = iter(range(0, 10_000, 60))               # every look at the clock: one more minute
    budget, rec = sft.Budget(2.5, clock=lambda: next(ticks)), Record()
    texts, labels = make(40, 0)
    sft.finetune(str(tiny), texts, labels, catalog, tcfg, tmp_path / "run", classes=CLASSES, progress=False,
                 callbacks=[budget, rec], max_steps=10)
    assert budget.stopped_at == 3 and rec.steps == [1, 2, 3]      # 60, 120, 180 s >= 150 s: stop


def test_warm_start_goes_on_from_the_adapter_on_new_pairs_and_a_replay(tiny, catalog, tcfg, tmp_path):
    old_t, old_y = make(40, 0)
    first = llm(tiny, tcfg, catalog).fit(old_t, old_y)
    assert first.fit_info == {"warm_start": False, "trained": 40}
    assert set(np.load(f"{first.adapter}/{TRAINED_ON}").tolist()) == set(pair_keys(old_t, old_y).tolist())
    trained = lora_b(first.adapter)
    assert any(v.abs().max() > 1e-3 for v in trained.values())    # a fresh LoRA's B is zero; this one learnt

    new_t, new_y = make(12, 7)
    second = llm(tiny, tcfg, catalog, learning_rate=1e-12)         # ~0: the weights stay where they started
    assert second.warm_start(first)
    second.fit(old_t + new_t, old_y + new_y)
    assert second.fit_info == {"warm_start": True, "new": 12, "replay": 5, "older": 40, "trained": 17}
    assert second.adapter != first.adapter
    after = lora_b(second.adapter)
    assert after.keys() == trained.keys() and all(torch.allclose(after[k], trained[k], atol=1e-8) for k in trained)
    assert len(np.load(f"{second.adapter}/{TRAINED_ON}")) == 52

    cold = llm(tiny, tcfg, catalog, learning_rate=1e-12).fit(new_t, new_y)   # from scratch: B starts at zero
    assert all(v.abs().max() < 1e-8 for v in lora_b(cold.adapter).values())


def test_no_warm_start_when_off_or_incompatible(tiny, catalog, tcfg):
    first = llm(tiny, tcfg, catalog).fit(*make(16, 0))
    off = llm(tiny, tcfg, catalog, incremental=False)
    assert not off.warm_start(first) and off.fit_info["why_not"] == "[sft] incremental is off"
    other = llm(tiny, tcfg, catalog)
    other.classes = CLASSES[:3]
    assert not other.warm_start(first) and other.fit_info["why_not"] == "its departments differ"
    assert not llm(tiny, tcfg, catalog).warm_start(llm(tiny, tcfg, catalog))   # zero-shot: no adapter


def test_nightly_retrain_warm_starts_from_the_current_version(home, tmp_path, catalog):
    rows = read_jsonl(SAMPLE / "history.jsonl")[:360]
    texts = [d.name for d in catalog.departments] + [r["text"] for r in rows[:100]]
    from tests.tiny_think import tiny_config, tiny_model

    tiny = tiny_model(tmp_path / "qwen2", texts)
    (tmp_path / "router.toml").write_text("[retrain]\nmin_new_labels = 50\n"
                                          + tiny_config(tiny, "incremental = true\nreplay = 20\n"))
    engine, first = import_and_train(write_jsonl(tmp_path / "a.jsonl", rows[:300]), "llm")
    assert first.data_snapshot["fit"] == {"from": None, "warm_start": False, "trained": first.data_snapshot["n_train"]}
    assert invoke("import", str(write_jsonl(tmp_path / "b.jsonl", rows[300:]))).exit_code == 0
    res = invoke("retrain", "--kind", "llm")
    assert res.exit_code in (0, 5), res.output
    fit = registry.versions(engine)[0].data_snapshot["fit"]
    assert fit["from"] == first.version and fit["warm_start"] and fit["replay"] == 20
    assert 40 <= fit["new"] <= 60 and first.data_snapshot["n_train"] - 10 <= fit["older"] <= first.data_snapshot["n_train"]
