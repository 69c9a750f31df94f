"""router/llm/sft.py on a tiny random Qwen2 (CPU): the loss falls, a separable set is learnt,
the loss covers only the answer, an interrupted run resumes from its checkpoint."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from transformers import TrainerCallback

from router import config
from router.llm.load import load_model
from router.llm.prompt import build_prompt
from tests import tiny_llm
from router.llm import sft

CLASSES = ["police", "water-supply", "housing", "education"]
KEYS = {"police": "偷窃 被盗 报警", "water-supply": "停水 水管 水压", "housing": "物业 房屋 维修",
        "education": "学校 老师 学生"}
FILLER = list("今天我们家附近一直有问题请尽快处理谢谢市民反映情况")


def make(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        c = CLASSES[i % len(CLASSES)]
        words = KEYS[c].split()
        texts.append("".join(rng.choices(FILLER, k=3)) + " ".join(rng.choices(words, k=3)))
        labels.append(c)
    return texts, labels


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, catalog):
    corpus = [t for c in CLASSES for t in (KEYS[c], catalog.name(c))] + ["".join(FILLER), "派单。部门：工单："] * 3
    return tiny_llm.build(tmp_path_factory.mktemp("tiny") / "model", corpus)


@pytest.fixture
def tcfg(cfg):
    c = cfg.model_copy(deep=True)
    c.prompt = config.Prompt(**tiny_llm.PROMPT)
    c.llm.device = "cpu"
    return c


FAST = dict(lora_r=8, lora_alpha=16, lora_dropout=0.0, batch_size=8, grad_accum=1, learning_rate=1e-2,
            warmup_ratio=0.0, max_seq=128, logging_steps=1, save_steps=1000, gradient_checkpointing=False)


class Record(TrainerCallback):
    def __init__(self, stop_at: int | None = None):
        self.losses, self.steps, self.stop_at = [], [], stop_at

    def on_log(self, args, state, control, logs=None, **kw):
        if logs and "loss" in logs:
            self.losses.append(logs["loss"])

    def on_step_end(self, args, state, control, **kw):
        self.steps.append(state.global_step)
        if self.stop_at is not None and state.global_step >= self.stop_at:
            raise KeyboardInterrupt("simulated crash")


def accuracy(folder, adapter, catalog, tcfg, texts, labels) -> float:
    model, tok = load_model(str(folder), adapter=adapter, device="cpu")
    prompt = build_prompt(tok, catalog, tcfg.prompt, CLASSES)
    right = 0
    with torch.no_grad():
        for text, label in zip(texts, labels):
            scores = []
            for c in CLASSES:
                p, a = prompt.ids(text), prompt.answer(c)
                logp = model(torch.tensor([p + a])).logits[0, len(p) - 1:-1].log_softmax(-1)
                scores.append(float(logp[torch.arange(len(a)), torch.tensor(a)].sum()))
            right += CLASSES[int(np.argmax(scores))] == label
    return right / len(texts)


def test_examples_mask_only_the_answer(tiny, catalog, tcfg):
    _, tok = load_model(str(tiny), device="cpu")
    prompt = build_prompt(tok, catalog, tcfg.prompt, CLASSES)
    ex = sft.examples(prompt, ["学校 老师" * 50], ["education"], max_seq=60)
    ids, mask = ex["input_ids"][0], ex["completion_mask"][0]
    answer = prompt.answer("education")
    assert len(ids) <= 60 and sum(mask) == len(answer)
    assert [t for t, m in zip(ids, mask) if m] == answer          # the loss sees the answer only
    assert ids[: len(prompt.prefix)] == prompt.prefix              # the instruction is never cut
    assert ids[-len(answer) - len(prompt.suffix):-len(answer)] == prompt.suffix
    with pytest.raises(ValueError, match="max_seq"):
        sft.examples(prompt, ["x"], ["education"], max_seq=len(prompt.prefix))


def batch(ex: dict, pad: int) -> dict:
    n = max(len(x) for x in ex["input_ids"])
    ids = [x + [pad] * (n - len(x)) for x in ex["input_ids"]]
    att = [[1] * len(x) + [0] * (n - len(x)) for x in ex["input_ids"]]
    lab = [[t if m else -100 for t, m in zip(x, mk)] + [-100] * (n - len(x))
           for x, mk in zip(ex["input_ids"], ex["completion_mask"])]
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(att), "labels": torch.tensor(lab)}


def test_shared_prefix_forward_matches_the_full_prompt(tiny, catalog, tcfg):
    from trl.trainer.utils import add_fused_lm_head

    model, tok = load_model(str(tiny), device="cpu")
    add_fused_lm_head(model, outputs=("log_probs", "is_top1"))
    prompt = build_prompt(tok, catalog, tcfg.prompt, CLASSES)
    texts, labels = make(3, 5)
    texts[1] += "很长的补充说明" * 3                                     # ragged lengths: padding is exercised
    kv = sft.prefix_kv(model, prompt.prefix, "cpu")
    with torch.no_grad():
        shared = sft.shared_forward(model, kv, batch(sft.examples(prompt, texts, labels, 128, True), 0),
                                    len(prompt.prefix)).log_probs.sum(1)
        full = [model(**batch(sft.examples(prompt, [t], [y], 256), 0), fused_lm_head=True).log_probs.sum()
                for t, y in zip(texts, labels)]
    assert torch.allclose(shared, torch.stack(full), atol=1e-4), (shared, full)


def test_cpu_config_falls_back(tmp_path):
    args = sft.sft_config(sft.settings(config.Settings()), tmp_path, cuda=False, n_examples=100)
    assert args.optim == "adamw_torch" and not args.bf16 and args.completion_only_loss
    assert args.per_device_train_batch_size == 4 and args.gradient_accumulation_steps == 4
    assert args.learning_rate == 5e-5 and args.lr_scheduler_type == "cosine"


def test_finetune_learns_a_separable_set(tiny, catalog, tcfg, tmp_path):
    texts, labels = make(64, 0)
    test_texts, test_labels = make(16, 1)
    before = accuracy(tiny, None, catalog, tcfg, test_texts, test_labels)
    rec = Record()
    adapter = sft.finetune(str(tiny), texts, labels, catalog, tcfg, tmp_path / "run", classes=CLASSES,
                           callbacks=[rec], progress=False, epochs=6, **FAST)
    assert (adapter / "adapter_config.json").exists()
    assert len(rec.losses) >= 40                                   # 6 epochs x 8 steps
    first, last = np.mean(rec.losses[:3]), np.mean(rec.losses[-5:])
    assert last < first * 0.3, rec.losses
    after = accuracy(tiny, adapter, catalog, tcfg, test_texts, test_labels)
    assert after >= 0.5 and after >= before + 0.25, (before, after)  # chance is 0.25


def test_interrupted_run_resumes_from_its_checkpoint(tiny, catalog, tcfg, tmp_path):
    texts, labels = make(32, 2)
    kw = {**FAST, "save_steps": 2, "max_steps": 6, "batch_size": 4, "share_prefix": False}  # the plain path
    crash = Record(stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        sft.finetune(str(tiny), texts, labels, catalog, tcfg, tmp_path / "run", classes=CLASSES,
                     callbacks=[crash], progress=False, **kw)
    assert sft.last_checkpoint(tmp_path / "run" / "checkpoints").endswith("checkpoint-2")
    again = Record()
    adapter = sft.finetune(str(tiny), texts, labels, catalog, tcfg, tmp_path / "run", classes=CLASSES,
                           callbacks=[again], progress=False, **kw)
    assert again.steps == [3, 4, 5, 6]                              # continued, not restarted
    assert (adapter / "adapter_model.safetensors").exists()
    fresh = Record()
    sft.finetune(str(tiny), texts, labels, catalog, tcfg, tmp_path / "run2", classes=CLASSES,
                 callbacks=[fresh], progress=False, **kw)
    assert fresh.steps[0] == 1


def test_pick_base_follows_the_settings_then_the_free_memory():
    s = sft.settings(config.Settings(), batch_size=2)                            # base = auto, checkpointing, batch 2 x 896
    assert s.base == "auto"
    assert sft.pick_base(s, "auto", "cpu")[0] == "fp32"
    assert sft.pick_base(sft.settings(config.Settings(), base="bf16"), "auto", "cpu")[0] == "fp32"  # no GPU: never bf16/nf4
    assert sft.pick_base(sft.settings(config.Settings(), base="nf4"), False, "cuda") == ("nf4", "[sft] base = nf4")
    assert sft.pick_base(sft.settings(config.Settings(), base="bf16"), True, "cuda")[0] == "bf16"   # [sft] base wins
    assert sft.pick_base(s, True, "cuda")[0] == "nf4"                # older configs: [llm] quantize decides
    assert sft.pick_base(s, False, "cuda")[0] == "bf16"
    assert sft.pick_base(s, "auto", "cuda")[0] == "nf4"              # size unknown: the safe choice
    seven_b = (7_615_616_512, 28, 3584)                              # DeepSeek-R1-Distill-Qwen-7B
    base, why = sft.pick_base(s, "auto", "cuda:0", seven_b, free=75 * sft.GIB)
    assert base == "bf16" and "75.0 GiB free on cuda:0 holds" in why and "14.2 GiB" in why
    assert sft.pick_base(s, "auto", "cuda", seven_b, free=16 * sft.GIB)[0] == "nf4"   # a 16 GiB card
    # without checkpointing the step needs ~10x more: 24 GiB holds the checkpointed run only
    assert sft.pick_base(s, "auto", "cuda", seven_b, free=24 * sft.GIB)[0] == "bf16"
    assert sft.pick_base(sft.settings(config.Settings(), batch_size=2, gradient_checkpointing=False), "auto", "cuda", seven_b,
                         free=24 * sft.GIB)[0] == "nf4"


def test_model_shape_counts_the_parameters_without_loading(tiny, tmp_path):
    model, _ = load_model(str(tiny), device="cpu")
    params, layers, hidden = sft.model_shape(str(tiny))
    assert params == sum(p.numel() for p in model.parameters())
    assert (layers, hidden) == (model.config.num_hidden_layers, model.config.hidden_size)
    assert sft.model_shape(str(tmp_path)) is None                    # no config: unknown, not a crash


def test_finetune_records_its_base(tiny, catalog, tcfg, tmp_path, caplog):
    texts, labels = make(8, 3)
    with caplog.at_level("INFO", logger="router.llm.sft"):
        sft.finetune(str(tiny), texts, labels, catalog, tcfg, tmp_path / "run", classes=CLASSES, progress=False,
                     **{**FAST, "max_steps": 1, "base": "bf16"})
    import json

    assert json.loads((tmp_path / "run" / "base.json").read_text())["base"] == "fp32"   # CPU
    assert "training base: fp32" in caplog.text


class NanQueryGrads(TrainerCallback):
    """NaN gradients into the query projections' LoRA weights, as cuDNN's attention backward gave them
    on the GPU (pytorch/pytorch#196678); records whether cuDNN attention was enabled while training."""

    def __init__(self):
        self.cudnn = []

    def on_train_begin(self, args, state, control, model=None, **kw):
        for n, w in model.named_parameters():
            if w.requires_grad and "q_proj" in n:
                w.register_hook(lambda g: torch.full_like(g, float("nan")))

    def on_step_end(self, args, state, control, **kw):
        self.cudnn.append(torch.backends.cuda.cudnn_sdp_enabled())


def test_a_diverged_fit_fails_there_and_trains_without_cudnn_attention(tiny, catalog, tcfg, tmp_path):
    texts, labels = make(16, 3)
    rec = NanQueryGrads()
    with pytest.raises(ValueError, match="LoRA fit diverged: .* not finite after step 2"):
        sft.finetune(str(tiny), texts, labels, catalog, tcfg, tmp_path / "run", classes=CLASSES,
                     callbacks=[rec], progress=False, max_steps=2, **FAST)
    assert not (tmp_path / "run" / "adapter").exists()            # no NaN adapter to score with
    assert rec.cudnn == [False, False] and torch.backends.cuda.cudnn_sdp_enabled()  # off while training only
