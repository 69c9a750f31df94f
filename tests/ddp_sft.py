"""Run by tests/test_parallel.py, under torchrun and alone: one optimizer step over 16 examples (the
whole set: the same step for any number of processes), with the shared prefix and without it; every
rank writes the step's logged loss and gradient norm, and its LoRA weights after it.

    python -m torch.distributed.run --nproc-per-node 2 tests/ddp_sft.py MODEL_FOLDER OUT_FOLDER
    python tests/ddp_sft.py MODEL_FOLDER OUT_FOLDER
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from transformers import TrainerCallback

from router import ROOT, config, parallel
from router.catalog import load_catalog
from router.llm import sft
from tests import tiny_llm
from tests.test_training_sft import make


class Keep(TrainerCallback):
    """The first logged step, and the trainable weights at the end."""

    def __init__(self):
        self.first, self.weights = None, None

    def on_log(self, args, state, control, logs=None, **kw):
        if self.first is None and logs and "loss" in logs:
            self.first = {"loss": float(logs["loss"]), "grad_norm": float(logs["grad_norm"])}

    def on_train_end(self, args, state, control, model=None, **kw):
        self.weights = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def main(model: str, out: Path) -> None:
    rank = parallel.init().rank
    cfg = config.Settings()
    cfg.prompt = config.Prompt(**tiny_llm.PROMPT)
    cfg.llm.device = "cpu"
    catalog = load_catalog(ROOT / "data" / "departments.json")
    texts, labels = make(16, 0)
    for share in (True, False):
        keep = Keep()
        sft.finetune(model, texts, labels, catalog, cfg, out / f"work-{share}", resume=False,
                     classes=sorted(set(labels)), callbacks=[keep], progress=False, share_prefix=share,
                     lora_r=8, lora_alpha=16, lora_dropout=0.0, batch_size=2, grad_accum=8, learning_rate=1e-2,
                     warmup_ratio=0.0, max_seq=128, logging_steps=1, save_steps=1000, max_steps=1,
                     gradient_checkpointing=False)
        n = parallel.world().size
        torch.save(keep.weights, out / f"weights-{n}-{share}-{rank}.pt")
        (out / f"first-{n}-{share}-{rank}.json").write_text(json.dumps(keep.first))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
