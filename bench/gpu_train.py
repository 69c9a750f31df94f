"""LoRA training step on the 7B shape (DeepSeek-R1-Distill-Qwen-7B, random weights, its real
tokenizer): peak GPU memory and tokens/s of OUR step (router/llm/sft.py: trl SFTTrainer, NF4 or bf16
base, bf16 LoRA, loss on the answer tokens through trl's fused LM head, no fp32 up-casting) against
the standard transformers + peft QLoRA path (prepare_model_for_kbit_training, full-vocabulary loss),
same run.

    python bench/gpu_train.py --tokenizer DIR            # on the GPU machine (needs bitsandbytes, trl)
    python bench/gpu_train.py --tokenizer DIR --data sample --variants standard,ours_prefix,ours_bf16_prefix
    python bench/gpu_train.py --tiny --tokenizer DIR     # a small shape, to check the script on CPU-less boxes

--data random (default): batch 2 x 896 random tokens, the answer the last 8 of each sequence.
--data sample: the product's own examples (sft.examples) from data/sample/history.jsonl with the
default prompt (its instruction prefix is 5,251 tokens with the real tokenizer): the non-prefix
variants carry the whole prompt in every sequence. LoRA r=64 on q/k/v/o/gate/up/down, paged 8-bit
AdamW, 16 sequences per optimizer step (micro-batch x accumulation). The *_prefix variants encode
the shared instruction once per optimizer step (share_prefix); with --data random it is the first
796 of the 896 tokens. tokens/s always counts every prompt token of every sequence, prefix included.
Each variant runs in its own process (clean peak-memory figures). Writes bench/results/gpu_train.json
(--name; and $OUT/ when set) and prints a table.
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

CUDA = torch.cuda.is_available()   # without one (--tiny script check): fp32 base, AdamW, no memory figures

TINY = dict(vocab_size=152064, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
# variant -> (what, settings): base nf4 | bf16, ckpt (activation checkpointing), micro (micro-batch; the
# accumulation keeps --batch x --accum sequences per optimizer step), prefix (share_prefix)
VARIANTS = {
    "standard": ("transformers+peft: prepare_model_for_kbit_training, full-vocabulary loss", {}),
    "ours": ("router/llm/sft.py: SFTTrainer, NF4 base, answer-only fused loss, bf16 LoRA, checkpointing", {}),
    "ours_selective": ("ours with trl's selective activation checkpointing", {"ckpt": "selective"}),
    "ours_no_ckpt": ("ours without activation checkpointing", {"ckpt": False}),
    "ours_b4": ("ours, micro-batch 4 (same sequences per optimizer step)", {"micro": 4}),
    "ours_b8": ("ours, micro-batch 8", {"micro": 8}),
    "ours_b16": ("ours, micro-batch 16", {"micro": 16}),
    "ours_bf16": ("ours on the bf16 base ([sft] base = bf16)", {"base": "bf16"}),
    "ours_bf16_no_ckpt": ("ours_bf16 without activation checkpointing", {"base": "bf16", "ckpt": False}),
    "ours_bf16_b8": ("ours_bf16, micro-batch 8", {"base": "bf16", "micro": 8}),
    "ours_prefix": ("ours, shared instruction prefix encoded once per optimizer step", {"prefix": True}),
    "ours_prefix_no_ckpt": ("ours_prefix without activation checkpointing", {"prefix": True, "ckpt": False}),
    "ours_prefix_b8": ("ours_prefix, micro-batch 8", {"prefix": True, "micro": 8}),
    "ours_bf16_prefix": ("ours_prefix on the bf16 base", {"prefix": True, "base": "bf16"}),
    "ours_bf16_prefix_b16": ("ours_bf16_prefix, micro-batch 16", {"prefix": True, "base": "bf16", "micro": 16}),
}
PREFIX = 796   # --data random: shared instruction tokens of each 896-token sequence in the *_prefix variants
ANSWER = 8


def build(folder: Path, shape: dict, tokenizer: Path) -> None:
    from bench.gpu_llm import build_random

    if not (folder / "config.json").exists():
        t0 = time.perf_counter()
        build_random(folder, tokenizer, shape)
        print(f"built and saved the model in {time.perf_counter() - t0:.0f} s", flush=True)


def sample_examples(folder: Path, n: int, share: bool, seq: int) -> tuple[dict, list[int], float]:
    """(examples, prefix, mean tokens per whole prompt) from the sample history, default prompt, real tokenizer."""
    from transformers import AutoTokenizer

    from router.catalog import load_catalog
    from router.llm import sft
    from router.llm.prompt import build_prompt

    prompt = build_prompt(AutoTokenizer.from_pretrained(folder), load_catalog(ROOT / "data/departments.json"))
    rows = [json.loads(x) for x in (ROOT / "data/sample/history.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [rows[i % len(rows)] for i in range(n)]
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    ex = sft.examples(prompt, texts, labels, seq if share else seq + len(prompt.prefix), share)
    whole = len(prompt.prefix) * share + sum(map(len, ex["input_ids"])) / n
    return ex, list(prompt.prefix) if share else [], whole


def dataset(n: int, seq: int, vocab: int) -> dict:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, vocab - 10, (n, seq), generator=g).tolist()
    return {"input_ids": ids, "completion_mask": [[0] * (seq - ANSWER) + [1] * ANSWER] * n}


class Timer:
    """Wall time of every optimizer step (synchronised), from the end of the previous one."""

    def __init__(self):
        self.marks = []

    def mark(self):
        if CUDA:
            torch.cuda.synchronize()
        self.marks.append(time.perf_counter())


def worker(variant: str, folder: Path, steps: int, warmup: int, seq: int, batch: int, accum: int, data: str) -> dict:
    from transformers import TrainerCallback

    from router.config import Settings
    from router.llm import sft

    timer = Timer()

    class Cb(TrainerCallback):
        def on_train_begin(self, *a, **k):
            timer.mark()

        def on_step_end(self, *a, **k):
            timer.mark()

    v = VARIANTS[variant][1]
    per_step = batch * accum
    micro = v.get("micro", batch)
    accum = max(1, per_step // micro)
    total = steps + warmup
    n = total * per_step
    shared = bool(v.get("prefix"))
    conf = json.loads((folder / "config.json").read_text())
    if data == "sample":
        ex, prefix, whole = sample_examples(folder, n, shared, seq)
    else:
        vocab = conf["vocab_size"]
        prefix_len = max(0, min(PREFIX, seq - 100)) if shared else 0
        ex = dataset(n, seq - prefix_len, vocab)
        prefix = torch.randint(10, vocab - 10, (prefix_len,), generator=torch.Generator().manual_seed(1)).tolist()
        whole = seq
    s = sft.settings(Settings(), batch_size=micro, grad_accum=accum, max_steps=total, save_steps=10 ** 6,
                     logging_steps=10 ** 6, max_seq=max(map(len, ex["input_ids"])), warmup_ratio=0.0,
                     gradient_checkpointing=v.get("ckpt", True), base=v.get("base", "nf4"))
    out = Path("/tmp/gpu_train_out") / variant
    mem = torch.cuda.max_memory_allocated if CUDA else (lambda: 0)
    if CUDA:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    if variant == "standard":
        tr = standard_trainer(folder, ex, s, out, [Cb()])
    else:
        from router.llm.load import load_model

        model, tok = load_model(str(folder), device="cuda" if CUDA else "cpu", quantize=CUDA and s.base == "nf4")
        tr = sft.trainer(model, tok, ex, s, out, cuda=CUDA, callbacks=[Cb()], progress=False,
                         prefix=prefix if shared else None)
    load_s = time.perf_counter() - t0
    weights = torch.cuda.memory_allocated() if CUDA else 0
    tr.train()
    dts = [b - a for a, b in zip(timer.marks, timer.marks[1:])][warmup:]
    tokens = micro * accum * whole
    return {"variant": variant, "what": VARIANTS[variant][0], "base": s.base, "micro_batch": micro,
            "accum": accum, "checkpointing": s.gradient_checkpointing, "load_s": round(load_s, 1),
            "weights_gib": round(weights / 2 ** 30, 2),
            "peak_gib": round(mem() / 2 ** 30, 2),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2 ** 30, 2) if CUDA else 0,
            "step_s": round(sum(dts) / len(dts), 3), "tokens_per_s": round(tokens * len(dts) / sum(dts), 1),
            "timed_steps": len(dts), "tokens_per_step": round(tokens), "shared_prefix_tokens": len(prefix),
            # what sft.STEP_BYTES models: the step's memory beyond the weights per micro-batch token, layer and hidden unit
            "step_bytes": round((mem() - weights) / (
                micro * sum(map(len, ex["input_ids"])) / n * conf["num_hidden_layers"] * conf["hidden_size"]), 1)}


def standard_trainer(folder: Path, data: dict, s: dict, out: Path, callbacks):
    """The usual QLoRA recipe: kbit preparation (fp32 norms, embeddings and head), the model's own
    full-vocabulary loss, transformers' Trainer."""
    from datasets import Dataset
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from router.llm.load import quantization
    from router.llm.sft import lora_config

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.bfloat16,
                                                 quantization_config=quantization(CUDA),
                                                 device_map={"": "cuda" if CUDA else "cpu"})
    model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True)
    model = get_peft_model(model, lora_config(s))
    labels = [[-100 if m == 0 else t for t, m in zip(ids, mask)]
              for ids, mask in zip(data["input_ids"], data["completion_mask"])]
    ds = Dataset.from_dict({"input_ids": data["input_ids"], "labels": labels,
                            "attention_mask": [[1] * len(x) for x in data["input_ids"]]})
    args = TrainingArguments(output_dir=str(out), per_device_train_batch_size=s.batch_size,
                             gradient_accumulation_steps=s.grad_accum, learning_rate=s.learning_rate,
                             lr_scheduler_type="cosine", optim="paged_adamw_8bit" if CUDA else "adamw_torch", bf16=CUDA, use_cpu=not CUDA,
                             max_steps=s.max_steps, gradient_checkpointing=True, save_strategy="no",
                             logging_steps=10 ** 6, report_to="none", disable_tqdm=True)
    pad = DataCollatorForSeq2Seq(AutoTokenizer.from_pretrained(folder), padding=True, label_pad_token_id=-100)
    return Trainer(model=model, args=args, train_dataset=ds, data_collator=pad, callbacks=callbacks)


def table(rows: list[dict], title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    base = next((r for r in rows if r["variant"] == "standard" and "error" not in r), None)
    t = Table(title=title)
    for c in ("variant", "base", "micro x accum", "peak GiB", "weights GiB", "s/step", "tokens/s", "vs standard"):
        t.add_column(c, justify="left" if c == "variant" else "right")
    for r in rows:
        if "error" in r:
            t.add_row(r["variant"], "-", "-", "-", "-", "-", "-", r["error"][:40])
            continue
        ratio = f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x" if base else "-"
        t.add_row(r["variant"], r["base"], f"{r['micro_batch']} x {r['accum']}", f"{r['peak_gib']:.2f}", f"{r['weights_gib']:.2f}", f"{r['step_s']:.3f}",
                  f"{r['tokens_per_s']:.0f}", ratio)
    Console().print(t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="small shape (script check)")
    ap.add_argument("--variants", default="standard,ours,ours_b4,ours_b8,ours_bf16,ours_bf16_no_ckpt")
    ap.add_argument("--data", choices=["random", "sample"], default="random")
    ap.add_argument("--tokenizer", type=Path, default=ROOT / ".gpu" / "tokenizer",
                    help="the DeepSeek-R1-Distill-Qwen-7B tokenizer folder")
    ap.add_argument("--steps", type=int, default=2, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=1, help="untimed optimizer steps first")
    ap.add_argument("--seq", type=int, default=896, help="tokens per sequence; --data sample: ticket + answer bound")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--accum", type=int, default=8)
    ap.add_argument("--folder", default="/tmp/qwen2-7b-shape")
    ap.add_argument("--name", default=None, help="results file name (default gpu_train.json)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    a = ap.parse_args()
    folder = Path(a.folder + ("-tiny" if a.tiny else ""))
    if a.worker:
        print("RESULT " + json.dumps(worker(a.worker, folder, a.steps, a.warmup, a.seq, a.batch, a.accum, a.data)),
              flush=True)
        return
    build(folder, TINY if a.tiny else QWEN_7B_SHAPE, a.tokenizer)
    rows = []
    for v in a.variants.split(","):
        cmd = [sys.executable, __file__, "--worker", v, "--steps", str(a.steps), "--warmup", str(a.warmup),
               "--seq", str(a.seq), "--batch", str(a.batch), "--accum", str(a.accum), "--folder", a.folder,
               "--data", a.data] + (["--tiny"] if a.tiny else [])
        print(f"== {v}", flush=True)
        p = subprocess.run(cmd, capture_output=True, text=True)
        res = [json.loads(line[7:]) for line in p.stdout.splitlines() if line.startswith("RESULT ")]
        if p.returncode or not res:
            tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
            print("\n".join(tail), flush=True)
            rows.append({"variant": v, "what": VARIANTS[v][0], "error": " | ".join(tail)[-300:]})
        else:
            rows.append(res[0])
            print(json.dumps(res[0]), flush=True)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    out = {"benchmark": "LoRA training step, DeepSeek-R1-Distill-Qwen-7B shape (random weights, real tokenizer), "
                        + ("sample tickets, default prompt" if a.data == "sample" else "random tokens")
                        + (" [TINY SHAPE]" if a.tiny else ""),
           "gpu": gpu, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python bench/gpu_train.py " + " ".join(sys.argv[1:]),
           "setup": {"batch": a.batch, "seq": a.seq, "accum": a.accum, "data": a.data, "lora_r": 64,
                     "optim": "paged_adamw_8bit", "torch": torch.__version__},
           "targets": {"peak_gib_max": 8.0, "speedup_min": 1.5},
           "rows": rows}
    name = ("gpu_train_tiny.json" if a.tiny else "gpu_train.json") if not a.name else a.name
    for d in [ROOT / "bench" / "results"] + ([Path(os.environ["OUT"])] if os.environ.get("OUT") else []):
        d.mkdir(parents=True, exist_ok=True)
        (d / name).write_text(json.dumps(out, indent=1))
    table(rows, f"{out['benchmark']} on {gpu}, batch {a.batch} x {a.seq}, accumulation {a.accum}")


if __name__ == "__main__":
    main()
