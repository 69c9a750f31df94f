"""The LLM router's mechanics on a tiny random Qwen2 (CPU, seconds): prompt, exact scoring with the
prefix cache and the label trie, batching, constrained generation, calibration, save/load."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from router import ROOT
from router.config import Settings
from router.llm import LoadError
from router.llm.generate import generate_labels
from router.llm.load import load_model
from router.llm.model import LLMClassifier
from router.llm.prompt import build_prompt
from router.llm.score import Scorer, build_trie
from tests.tiny_think import tiny_model

# Department lines without duties keep the shared prefix short (~600 tokens) and the tests fast.
SHORT = {"department": "{label}. {name}", "max_ticket_tokens": 96}          # default labels: 1..70
NAMED = {"department": "{label}", "label": "name", "max_ticket_tokens": 96}  # labels: department names


def tickets(n: int = 12) -> list[str]:
    rows = [json.loads(x) for x in (ROOT / "data/sample/history.jsonl").read_text(encoding="utf-8").splitlines()[:n]]
    return [r["text"] for r in rows]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory, catalog):
    texts = [d.name + "：" + d.duties for d in catalog.departments] + tickets(200)
    return tiny_model(tmp_path_factory.mktemp("tiny") / "qwen2", texts)


@pytest.fixture(scope="session")
def lm(tiny):
    return load_model(str(tiny), device="cpu")


@pytest.fixture(scope="session")
def prompt(lm, catalog):
    return build_prompt(lm[1], catalog, SHORT)


@pytest.fixture(scope="session")
def named(lm, catalog):
    return build_prompt(lm[1], catalog, NAMED)


def test_prompt_shares_the_prefix_and_closes_the_think_block(prompt, named, catalog):
    a, b = prompt.ids("小区门口垃圾堆积"), prompt.ids("夜间施工噪声扰民，请处理")
    n = len(prompt.prefix)
    assert a[:n] == b[:n] == prompt.prefix and a[n:] != b[n:]
    assert prompt.text_suffix.endswith("</think>\n\n")            # the model answers at once
    assert "1. 市公安局\n" in prompt.text_prefix and "{ticket}" not in prompt.text_prefix
    assert prompt.labels == [str(i + 1) for i in range(len(catalog.ids))]
    assert named.labels == [catalog.name(c) for c in catalog.ids] and "\n市公安局\n" in named.text_prefix
    ids, target = prompt.example("路灯坏了", "urban-mgmt")
    answer = prompt.answer("urban-mgmt")
    assert ids[-len(answer):] == answer and answer[-1] == prompt.end_id
    assert target == [-100] * (len(ids) - len(answer)) + answer
    assert len(prompt.ticket("很长" * 1000)) == SHORT["max_ticket_tokens"] + len(prompt.suffix)


def test_trie_shares_prefixes_and_separates_a_label_that_prefixes_another():
    t = build_trie([[5, 6], [5, 6, 7], [8]], end_id=0)
    assert t.tokens == [5, 6]                       # inner nodes: "5" and "5 6"
    assert t.steps[0] == [(0, 5), (1, 6), (2, 0)]   # [5, 6] ends with the end token
    assert t.steps[1] == [(0, 5), (1, 6), (2, 7)]
    assert t.steps[2] == [(0, 8)]


@pytest.mark.parametrize("style", ["number", "name"])
def test_scores_equal_the_product_of_token_probabilities(lm, prompt, named, style):
    model, _ = lm
    prompt = prompt if style == "number" else named
    texts = tickets(4)
    scorer = Scorer(model, prompt)
    assert scorer.split                                      # flash attention over the prefix, on CPU too
    cached = scorer.logprobs(texts, batch_size=3)
    plain = Scorer(model, prompt, cache_prefix=False).logprobs(texts, batch_size=4)
    via_cache = Scorer(model, prompt, split=False).logprobs(texts, batch_size=2)
    assert np.abs(cached - plain).max() < 1e-4 and np.abs(via_cache - plain).max() < 1e-4
    assert model.config._attn_implementation == "sdpa"      # restored after each batch
    # Brute force for a few labels: one full forward over prompt + label (+ end of turn for
    # "1", a prefix of "10", and "市公安局", whose tokens begin "市公安局交通警察支队").
    assert [t for _, t in scorer.trie.steps[0]] == prompt.label_ids[0] + [prompt.end_id]
    for i, j in [(0, 0), (1, 13), (3, 69)]:
        ids, lab = prompt.ids(texts[i]), [t for _, t in scorer.trie.steps[j]]
        with torch.no_grad():
            logp = model(torch.tensor([ids + lab])).logits[0].float().log_softmax(-1)
        ref = sum(logp[len(ids) - 1 + k, t].item() for k, t in enumerate(lab))
        assert cached[i, j] == pytest.approx(ref, abs=1e-4)
    assert np.ptp(cached, axis=1).min() > 1.0       # the departments really get different scores


def test_batching_is_deterministic_and_keeps_the_order(tiny, catalog):
    clf = LLMClassifier(Settings(), catalog=catalog, base=str(tiny), device="cpu", template=SHORT, batch_size=3)
    texts = tickets(7)
    p = clf.predict_proba(texts)
    assert p.shape == (7, len(catalog.ids)) and np.allclose(p.sum(axis=1), 1)
    assert np.array_equal(p, clf.predict_proba(texts))                     # deterministic
    clf.batch_size = 7
    assert np.allclose(clf.predict_proba(texts[::-1])[::-1], p, atol=1e-5)  # order kept, any batching
    assert clf.predict_proba([]).shape == (0, len(catalog.ids))


@pytest.mark.parametrize("style", ["number", "name"])
def test_generated_labels_are_departments_and_never_beat_exact_scoring(lm, prompt, named, style):
    model, _ = lm
    prompt = prompt if style == "number" else named
    texts = tickets(4)
    labels, p = generate_labels(model, prompt, texts, batch_size=2)
    assert all(lab in prompt.labels for lab in labels)
    assert np.all((p > 0) & (p <= 1))
    logp = Scorer(model, prompt).logprobs(texts)
    for i, lab in enumerate(labels):
        assert logp[i].max() >= logp[i, prompt.labels.index(lab)]


def test_calibration_fits_a_temperature_that_lowers_the_nll(tiny, catalog):
    clf = LLMClassifier(Settings(), catalog=catalog, base=str(tiny), device="cpu", template=SHORT)
    rows = [json.loads(x) for x in (ROOT / "data/sample/history.jsonl").read_text(encoding="utf-8").splitlines()[:16]]
    rep = clf.calibrate([r["text"] for r in rows], [r["label"] for r in rows])
    assert rep["n"] == 16 and clf.temperature == rep["temperature"] != 1.0
    assert rep["nll_after"] <= rep["nll_before"]
    assert 0 <= rep["ece_after"] <= 1 and 0 <= rep["ece_before"] <= 1


def test_save_and_load_round_trip(tiny, catalog, tmp_path):
    from router import classifier

    clf = LLMClassifier(Settings(), catalog=catalog, base=str(tiny), device="cpu", template=SHORT, temperature=2.5)
    texts = tickets(3)
    p = clf.predict_proba(texts)
    clf.save(tmp_path / "v1")
    meta = json.loads((tmp_path / "v1" / "meta.json").read_text())
    assert meta["kind"] == "llm" and meta["base"] == str(tiny) and meta["temperature"] == 2.5
    assert meta["labels"] == [str(i + 1) for i in range(70)] and meta["template"] == {**meta["template"], **SHORT}
    back = classifier.load(tmp_path / "v1", Settings())
    back.device = "cpu"
    assert isinstance(back, LLMClassifier) and list(back.classes_) == catalog.ids
    assert np.allclose(back.predict_proba(texts), p, atol=1e-6)


def test_missing_model_or_adapter_is_a_clear_error(tiny, tmp_path):
    with pytest.raises(LoadError, match="does not exist"):
        load_model(str(tmp_path / "nope"), device="cpu")
    with pytest.raises(LoadError, match="no config.json"):
        load_model(str(tmp_path), device="cpu")
    with pytest.raises(LoadError, match="adapter"):
        load_model(str(tiny), adapter=tmp_path / "no-adapter", device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(LoadError, match="GPU"):
            load_model(str(tiny), device="cuda")
        with pytest.raises(LoadError, match="CUDA"):
            load_model(str(tiny), device="cpu", quantize=True)


def test_fit_trains_an_adapter_that_is_saved_and_loaded(tiny, catalog, tmp_path):
    from router import classifier

    cfg = Settings(paths={"home": str(tmp_path / "home")},  # the run's work folder goes there, not into ./.router
                   sft={"max_steps": 2, "batch_size": 2, "grad_accum": 1, "learning_rate": 1e-3, "save_steps": 1000,
                        "gradient_checkpointing": False, "lora_r": 4, "lora_alpha": 8, "logging_steps": 1})
    clf = LLMClassifier(cfg, catalog=catalog, base=str(tiny), device="cpu", template=SHORT)
    texts = tickets(8)
    before = clf.predict_proba(texts)
    rows = [json.loads(x) for x in (ROOT / "data/sample/history.jsonl").read_text(encoding="utf-8").splitlines()[:8]]
    clf.fit([r["text"] for r in rows], [r["label"] for r in rows])
    assert clf.adapter and (Path(clf.adapter) / "adapter_config.json").exists()
    after = clf.predict_proba(texts)
    assert not np.allclose(after, before, atol=1e-6)      # the adapter changes the scores
    clf.save(tmp_path / "v2")
    assert (tmp_path / "v2" / "adapter" / "adapter_config.json").exists()
    back = classifier.load(tmp_path / "v2", Settings())
    back.device = "cpu"
    assert np.allclose(back.predict_proba(texts), after, atol=1e-5)
