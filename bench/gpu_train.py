"""QLoRA training step on the 7B shape (DeepSeek-R1-Distill-Qwen-7B, random weights): peak GPU
memory and tokens/s of OUR step (router/llm/sft.py: trl SFTTrainer, NF4 base, bf16 LoRA, loss on
the answer tokens through trl's fused LM head, no fp32 up-casting) against the standard
transformers + peft path (prepare_model_for_kbit_training, full-vocabulary loss), same run.

    python bench/gpu_train.py                 # on the GPU machine (needs bitsandbytes, trl)
    python bench/gpu_train.py --tiny          # a small shape, to check the script on a CPU-less box

Batch 2 x 896 tokens, LoRA r=64 on q/k/v/o/gate/up/down, paged 8-bit AdamW, accumulation 8
(one optimizer step = 16 sequences); the answer is the last 8 tokens of each sequence.
The *_prefix variants train the same 896-token sequences as 796 shared instruction tokens
(encoded once per optimizer step, as router/llm/sft.py does with share_prefix) + 100 own tokens;
their tokens/s counts all 896 prompt tokens of each sequence, like the others.
Each variant runs in its own process (clean peak-memory figures). Writes
bench/results/gpu_train.json (and $OUT/gpu_train.json when $OUT is set) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.tiny_think import QWEN_7B_SHAPE  # noqa: E402

TINY = dict(vocab_size=4096, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
VARIANTS = {
    "standard": "transformers+peft: prepare_model_for_kbit_training, full-vocabulary loss",
    "ours": "router/llm/sft.py: SFTTrainer, answer-only fused loss, bf16 LoRA, checkpointing",
    "ours_selective": "ours with trl's selective activation checkpointing",
    "ours_no_ckpt": "ours without activation checkpointing",
    "ours_prefix": "ours, shared instruction prefix (share_prefix): prefix encoded once per optimizer step",
    "ours_prefix_no_ckpt": "ours_prefix without activation checkpointing",
}
PREFIX = 796   # shared instruction tokens of each 896-token sequence in the *_prefix variants (ticket: 92, answer: 8)
ANSWER = 8


def build(folder: Path, shape: dict) -> None:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from tests.tiny_llm import build_tokenizer

    if (folder / "config.json").exists():
        return
    t0 = time.perf_counter()
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(Qwen2Config(**shape)).to(torch.bfloat16)
    model.save_pretrained(folder)
    build_tokenizer(["派单 工单 部门 市民 反映"] * 4, vocab_size=300).save_pretrained(folder)
    print(f"built and saved the model in {time.perf_counter() - t0:.0f} s", flush=True)


def dataset(n: int, seq: int, vocab: int) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, vocab - 10, (n, seq), generator=g).tolist()
    return {"input_ids": ids, "completion_mask": [[0] * (seq - ANSWER) + [1] * ANSWER] * n}


class Timer:
    """Wall time of every optimizer step (synchronised), from the end of the previous one."""

    def __init__(self):
        self.marks = []

    def mark(self):
        torch.cuda.synchronize()
        self.marks.append(time.perf_counter())


def worker(variant: str, folder: Path, steps: int, warmup: int, seq: int, batch: int, accum: int) -> dict:
    from transformers import TrainerCallback

    from router.llm import sft

    timer = Timer()

    class Cb(TrainerCallback):
        def on_train_begin(self, *a, **k):
            timer.mark()

        def on_step_end(self, *a, **k):
            timer.mark()

    total = steps + warmup
    n = total * batch * accum
    vocab = json.loads((folder / "config.json").read_text())["vocab_size"]
    shared = variant.startswith("ours_prefix")
    prefix_len = min(PREFIX, seq - 100) if shared else 0
    data = dataset(n, seq - prefix_len, vocab)
    prefix = torch.randint(10, vocab - 10, (prefix_len,), generator=torch.Generator().manual_seed(1)).tolist()
    s = sft.settings(None, batch_size=batch, grad_accum=accum, max_steps=total, save_steps=10 ** 6,
                     logging_steps=10 ** 6, max_seq=seq, warmup_ratio=0.0,
                     gradient_checkpointing={"ours_selective": "selective", "ours_no_ckpt": False,
                                             "ours_prefix_no_ckpt": False}.get(variant, True))
    out = Path("/tmp/gpu_train_out") / variant
    torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if variant == "standard":
        tr = standard_trainer(folder, data, s, out, [Cb()])
    else:
        from router.llm.load import load_model

        model, tok = load_model(str(folder), device="cuda", quantize=True)
        tr = sft.trainer(model, tok, data, s, out, cuda=True, callbacks=[Cb()], progress=False,
                         prefix=prefix if shared else None)
    load_s = time.perf_counter() - t0
    weights = torch.cuda.memory_allocated()
    tr.train()
    dts = [b - a for a, b in zip(timer.marks, timer.marks[1:])][warmup:]
    tokens = batch * accum * seq
    return {"variant": variant, "what": VARIANTS[variant], "load_s": round(load_s, 1),
            "weights_gib": round(weights / 2 ** 30, 2),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2 ** 30, 2),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2 ** 30, 2),
            "step_s": round(sum(dts) / len(dts), 3), "tokens_per_s": round(tokens * len(dts) / sum(dts), 1),
            "timed_steps": len(dts), "tokens_per_step": tokens, "shared_prefix_tokens": prefix_len}


def standard_trainer(folder: Path, data: dict, s: dict, out: Path, callbacks):
    """The usual QLoRA recipe: kbit preparation (fp32 norms, embeddings and head), the model's own
    full-vocabulary loss, transformers' Trainer."""
    from datasets import Dataset
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments, default_data_collator

    from router.llm.load import quantization
    from router.llm.sft import lora_config

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16,
                                                 quantization_config=quantization(True), device_map={"": "cuda"})
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(model, lora_config(s))
    labels = [[-100 if m == 0 else t for t, m in zip(ids, mask)]
              for ids, mask in zip(data["input_ids"], data["completion_mask"])]
    ds = Dataset.from_dict({"input_ids": data["input_ids"], "labels": labels,
                            "attention_mask": [[1] * len(x) for x in data["input_ids"]]})
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=s.batch_size,
                             gradient_accumulation_steps=s.grad_accum, learning_rate=s.learning_rate,
                             lr_scheduler_type="cosine", optim="paged_adamw_8bit", bf16=True,
                             max_steps=s.max_steps, gradient_checkpointing=True, save_strategy="no",
                             logging_steps=10 ** 6, report_to="none", disable_tqdm=True)
    return Trainer(model=model, args=args, train_dataset=ds, data_collator=default_data_collator,
                   callbacks=callbacks)


def table(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    base = next((r for r in rows if r["variant"] == "standard" and "error" not in r), None)
    t = Table(title=title)
    for c in ("variant", "peak GiB", "weights GiB", "s/step", "tokens/s", "vs standard"):
        t.add_column(c, justify="left" if c == "variant" else "right")
    for r in rows:
        if "error" in r:
            t.add_row(r["variant"], "-", "-", "-", "-", r["error"][:40])
            continue
        ratio = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x" if base else "-"
        t.add_row(r["variant"], f"{r['peak_gib']:.2f}", f"{r['weights_gib']:.2f}", f"{r['step_s']:.3f}",
                  f"{r['tokens_per_s']:.0f}", ratio)
    Console().print(t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="small shape (script check)")
    ap.add_argument("--variants", default="standard,ours,ours_selective,ours_no_ckpt")
    ap.add_argument("--steps", type=int, default=2, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed optimizer steps first")
    ap.add_argument("--seq", type=int, default=896)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--accum", type=int, default=8)
    ap.add_argument("--folder", default="/tmp/qwen2-7b-shape")
    ap.add_argument("--name", default=None, help="results file name (default gpu_train.json)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    folder = Path(a.folder + ("-tiny" if a.tiny else ""))
    if a.worker:
        print("RESULT " + json.dumps(worker(a.worker, folder, a.steps, a.warmup, a.seq, a.batch, a.accum)),
              flush=True)
        return
    build(folder, TINY if a.tiny else QWEN_7B_SHAPE)
    rows = []
    for v in a.variants.split(","):
        cmd = [sys.executable, __file__, "--worker", v, "--steps", str(a.steps), "--warmup", str(a.warmup),
               "--seq", str(a.seq), "--batch", str(a.batch), "--accum", str(a.accum), "--folder", a.folder] + \
              (["--tiny"] if a.tiny else [])
        print(f"== {v}", flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True)
        res = [json.loads(line[7:]) for line in p.stdout.splitlines() if line.startswith("RESULT ")]
        if p.returncode or not res:
            tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
            print("\n".join(tail), flush=True)
            rows.append({"variant": v, "what": VARIANTS[v], "error": " | ".join(tail)[-300:]})
        else:
            rows.append(res[0])
            print(json.dumps(res[0]), flush=True)
    gpu = torch.cuda.get_device_name(0)
    out = {"benchmark": "QLoRA training step, DeepSeek-R1-Distill-Qwen-7B shape (random weights)"
                        + (" [TINY SHAPE]" if a.tiny else ""),
           "gpu": gpu, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python bench/gpu_train.py " + " ".join(sys.argv[1:]),
           "setup": {"batch": a.batch, "seq": a.seq, "accum": a.accum, "answer_tokens": ANSWER, "lora_r": 64,
                     "optim": "paged_adamw_8bit", "torch": torch.__version__},
           "targets": {"peak_gib_max": 8.0, "speedup_min": 2.0},
           "rows": rows}
    name = ("gpu_train_tiny.json" if a.tiny else "gpu_train.json") if not a.name else a.name
    for d in [ROOT / "bench" / "results"] + ([Path(os.environ["OUT"])] if os.environ.get("OUT") else []):
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(json.dumps(out, indent=1))
    table(rows, f"{out['benchmark']} on {gpu}, batch {a.batch} x {a.seq}, accumulation {a.accum}")


if __name__ == "__main__":
    main()
