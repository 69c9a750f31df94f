"""Where the time of a SmolLM2-135M LoRA step goes: the fine-tune of the Chinese sample through
router/llm/sft.py (names-only prompt, shared prefix, batch 16, lr 5e-4, bf16 base, fused AdamW:
the 412 s / 5,000 tickets x 3 epochs run of issue 14), timed per phase, then a torch-profiler pass.

    python bench/smol_step.py --model FOLDER [--gguf-file NAME]      # on the GPU (about 2 minutes)
    python bench/smol_step.py --model FOLDER --tiny --steps 2 --warmup 1 --profile-steps 1   # CPU check

Variants: `now` the code as it is; `before` puts back two GPU waits per step removed for a try (trl's isnan
check of the loss, the accuracy metric's .item()): no gain, and the code keeps them, so `before` = `now`
plus noise; `now_b64` batch 64 (how the step's time scales with work). Phases (seconds per optimizer step, CUDA synchronised at each boundary): data
(the collator), prefix (sft.prefix_kv), forward+backward (training_step minus prefix), clip (between
backward and the optimizer: gradient clipping, Trainer bookkeeping), optimizer (optimizer.step),
rest (Trainer loop, scheduler, callbacks). The profiler pass gives GPU busy time / wall time,
kernel launches per step and the top operators. Writes bench/results/smol_step.json (and $OUT/).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CUDA = torch.cuda.is_available()
EPOCH_STEPS = 938          # 5,000 tickets x 3 epochs / batch 16: the 412 s run
PROMPT = {"department": "{label}. {name}", "max_ticket_tokens": 256}


def sync():
    if CUDA:
        torch.cuda.synchronize()


def narrow(model: str, gguf_file: str | None, dest: Path) -> str:
    """A random model with `model`'s tokenizer and 30 layers but hidden size 64 (CPU check)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    if not (dest / "config.json").exists():
        kw = {"gguf_file": gguf_file} if gguf_file else {}
        conf = AutoConfig.from_pretrained(model, **kw)
        conf.update(dict(hidden_size=64, intermediate_size=128, num_attention_heads=4, num_key_value_heads=2,
                         head_dim=16))
        AutoModelForCausalLM.from_config(conf).save_pretrained(dest)
        AutoTokenizer.from_pretrained(model, **kw).save_pretrained(dest)
    return str(dest)


def run(variant: str, model_id: str, gguf_file, n: int, warmup: int, steps: int, prof_steps: int) -> dict:
    from transformers import TrainerCallback

    from router import config
    from router.catalog import load_catalog
    from router.llm import sft
    from router.llm.load import load_model
    from router.llm.prompt import build_prompt

    batch = 64 if variant.endswith("_b64") else 16
    model, tok = load_model(model_id, gguf_file=gguf_file, device="cuda" if CUDA else "cpu", quantize=False)
    prompt = build_prompt(tok, load_catalog(ROOT / "data/departments.json"), config.Prompt(**PROMPT))
    rows = [json.loads(x) for x in (ROOT / "data/sample/history.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = rows[:n]
    s = sft.settings(config.Settings(), learning_rate=5e-4, batch_size=batch, grad_accum=1, gradient_checkpointing=False,
                     max_seq=256, optim="adamw_torch_fused" if CUDA else "adamw_torch", save_steps=100_000,
                     logging_steps=50, epochs=3, max_steps=warmup + steps + prof_steps, base="bf16")
    ex = sft.examples(prompt, [r["text"] for r in rows], [r["label"] for r in rows], s.max_seq, True)
    tr = sft.trainer(model, tok, ex, s, Path("/tmp/smol_step") / variant, CUDA, progress=False, prefix=prompt.prefix)

    acc = defaultdict(float)
    state = {"on": False, "marks": [], "prof": None}

    def timed(fn, name):
        def wrapper(*a, **k):
            sync()
            t0 = time.perf_counter()
            out = fn(*a, **k)
            sync()
            if state["on"]:
                acc[name] += time.perf_counter() - t0
            return out
        return wrapper

    tr.data_collator = timed(tr.data_collator, "data")
    orig_prefix = sft.prefix_kv
    sft.prefix_kv = timed(orig_prefix, "prefix")
    tr.training_step = timed(tr.training_step, "training_step")
    if variant == "before":   # the two per-step waits the code had
        tr.args.logging_nan_inf_filter = True
        compute = tr.compute_loss

        def waiting(*a, **k):
            out = compute(*a, **k)
            tr._metrics["train"]["mean_token_accuracy"][-1] = float(tr._metrics["train"]["mean_token_accuracy"][-1])
            return out
        tr.compute_loss = waiting

    class Cb(TrainerCallback):
        def on_pre_optimizer_step(self, args, st, control, **k):
            sync()
            state["t_opt"] = time.perf_counter()

        def on_optimizer_step(self, args, st, control, **k):
            sync()
            if state["on"]:
                acc["optimizer"] += time.perf_counter() - state["t_opt"]

        def on_step_end(self, args, st, control, **k):
            sync()
            now = time.perf_counter()
            if st.global_step == warmup:
                state["on"], state["t0"] = True, now
            elif st.global_step == warmup + steps:
                state["on"], state["wall"] = False, now - state["t0"]
                if prof_steps:
                    state["prof"] = torch.profiler.profile(
                        activities=[torch.profiler.ProfilerActivity.CPU]
                        + ([torch.profiler.ProfilerActivity.CUDA] if CUDA else []))
                    state["prof"].__enter__()
                    state["tp"] = now
            elif st.global_step == warmup + steps + prof_steps and state["prof"] is not None:
                state["prof"].__exit__(None, None, None)
                state["prof_wall"] = now - state["tp"]

    tr.add_callback(Cb())
    try:
        tr.train()
    finally:
        sft.prefix_kv = orig_prefix
    per = {k: v / steps for k, v in acc.items()}
    step = state["wall"] / steps
    fb = per.pop("training_step") - per.get("prefix", 0)
    phases = {"data": per.get("data", 0), "prefix": per.get("prefix", 0), "forward_backward": fb,
              "optimizer": per.get("optimizer", 0)}
    phases["clip_and_rest"] = step - sum(phases.values())
    tokens = sum(map(len, ex["input_ids"])) / len(ex["input_ids"]) * batch
    res = {"variant": variant, "batch": batch, "step_s": round(step, 4),
           "phases_ms": {k: round(1000 * v, 1) for k, v in phases.items()},
           "ticket_tokens_per_s": round(tokens / step), "prefix_tokens": len(prompt.prefix),
           "examples_per_s": round(batch / step, 1),
           "projected_3_epochs_s": round(step * EPOCH_STEPS * 16 / batch, 1)}
    prof = state["prof"]
    if prof is not None:
        ev = prof.key_averages()
        kernels = sum(e.self_device_time_total for e in ev if e.device_type == torch.autograd.DeviceType.CUDA) \
            if CUDA else 0
        launches = sum(e.count for e in ev if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
        res["profile"] = {"gpu_busy_share": round(kernels / 1e6 / state["prof_wall"], 3),
                          "kernel_launches_per_step": round(launches / prof_steps),
                          "top_cuda": ev.table(sort_by="self_cuda_time_total" if CUDA else "self_cpu_time_total",
                                               row_limit=15, max_name_column_width=60),
                          "top_cpu": ev.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=60)}
    del tr, model
    gc.collect()
    if CUDA:
        torch.cuda.empty_cache()
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="SmolLM2-135M-Instruct folder (HF, or holding the .gguf)")
    ap.add_argument("--gguf-file", default=None)
    ap.add_argument("--tickets", type=int, default=5000)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=40, help="timed optimizer steps")
    ap.add_argument("--profile-steps", type=int, default=5)
    ap.add_argument("--variants", default="before,now,now_b64")
    ap.add_argument("--tiny", action="store_true", help="30 narrow random layers with the model's tokenizer (CPU)")
    ap.add_argument("--out", default=str(ROOT / "bench/results/smol_step.json"))
    a = ap.parse_args(argv)
    model, gguf = a.model, a.gguf_file
    if a.tiny:
        model, gguf = narrow(a.model, a.gguf_file, Path("/tmp/smol_step_narrow")), None
    out = {"benchmark": "SmolLM2-135M LoRA step on the Chinese sample, per phase" + (" [TINY]" if a.tiny else ""),
           "device": torch.cuda.get_device_name(0) if CUDA else "cpu",
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python bench/smol_step.py " + " ".join(sys.argv[1:] if argv is None else argv),
           "torch": torch.__version__, "rows": []}
    for v in a.variants.split(","):
        r = run(v, model, gguf, a.tickets, a.warmup, a.steps, a.profile_steps)
        out["rows"].append(r)
        print(json.dumps({k: x for k, x in r.items() if k != "profile"}), flush=True)
        if "profile" in r:
            print(f"GPU busy {r['profile']['gpu_busy_share']:.0%}, {r['profile']['kernel_launches_per_step']} "
                  f"kernel launches per step\n{r['profile']['top_cuda']}\n{r['profile']['top_cpu']}", flush=True)
    for p in [Path(a.out)] + ([Path(os.environ["OUT"]) / Path(a.out).name] if os.environ.get("OUT") else []):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(out, indent=1))
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"{out['benchmark']} on {out['device']}: ms per optimizer step")
    cols = ["variant", "batch", "step ms", "data", "prefix", "fwd+bwd", "optimizer", "clip+rest", "tickets/s",
            "3 epochs s"]
    for c in cols:
        t.add_column(c, justify="left" if c == "variant" else "right")
    for r in out["rows"]:
        p = r["phases_ms"]
        t.add_row(r["variant"], str(r["batch"]), f"{1000 * r['step_s']:.0f}", *(f"{p[k]:.0f}" for k in
                  ("data", "prefix", "forward_backward", "optimizer", "clip_and_rest")),
                  f"{r['examples_per_s']:.0f}", f"{r['projected_3_epochs_s']:.0f}")
    Console().print(t)
    return out


if __name__ == "__main__":
    main()
