"""Shared by the SmolLM2 + LoRA benchmarks (bench/train_banking77.py, bench/clinc150_nofit.py --llm):
the run's config and LLMClassifier.fit under a wall-clock budget."""

from __future__ import annotations

import time
from functools import partial


def run_cfg(prompt: dict, work: str, lr: float, epochs: float, batch: int, quantize: bool = False):
    """The current config with the benchmark's prompt, state under `work`, bf16 (or NF4) base,
    and [sft] for a 135M model: no gradient checkpointing, fused AdamW (no bitsandbytes needed)."""
    import torch

    from router import config

    cuda = torch.cuda.is_available()
    cfg = config.load()
    cfg.prompt = config.Prompt(**prompt)
    cfg.paths.home = str(work)
    cfg.llm = cfg.llm.model_copy(update=dict(device="auto", quantize=bool(quantize and cuda),
                                             precision="nf4" if quantize and cuda else "bf16", gguf_file="",
                                             batch_size=64))
    cfg.sft = cfg.sft.model_copy(update=dict(learning_rate=lr, epochs=epochs, batch_size=batch, grad_accum=1,
                                             gradient_checkpointing=False, max_seq=256,
                                             optim="paged_adamw_8bit" if quantize and cuda else
                                             "adamw_torch_fused" if cuda else "adamw_torch",
                                             save_steps=100_000, logging_steps=50))
    return cfg


def fit(clf, texts, labels, budget_s: float | None = None) -> dict:
    """clf.fit(texts, labels), training stopped after `budget_s` seconds (the adapter trained so
    far is kept); returns train_s, steps done and steps planned."""
    from transformers import TrainerCallback

    import router.llm.sft as sft

    class Budget(TrainerCallback):
        steps = planned = 0

        def on_step_end(self, args, state, control, **kw):
            Budget.steps, Budget.planned = state.global_step, state.max_steps
            if budget_s is not None and time.perf_counter() - t0 >= budget_s:
                control.should_training_stop = True

    t0 = time.perf_counter()
    orig = sft.finetune
    sft.finetune = partial(orig, callbacks=[Budget()], progress=False)   # LLMClassifier.fit imports it at call
    try:
        clf.fit(list(texts), list(labels))
    finally:
        sft.finetune = orig
    return {"train_s": round(time.perf_counter() - t0, 1), "steps": Budget.steps, "planned_steps": Budget.planned,
            "stopped_by_budget": Budget.steps < Budget.planned, "budget_s": budget_s}
