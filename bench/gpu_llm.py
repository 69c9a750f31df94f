"""GPU benchmark of the LLM router: exact label scoring by precision (NF4, bf16, FP8), with the real tokenizer.

    python bench/gpu_llm.py --tokenizer DIR                      # on the GPU (about 5 minutes on an H100)
    python bench/gpu_llm.py --tiny --tokenizer DIR --tickets 64  # CPU dry run, a tiny model of the same kind

A randomly initialised model with the exact shape of DeepSeek-R1-Distill-Qwen-7B (built in bf16,
saved, then loaded through router.llm.load at each precision), the real tokenizer and the shipped
default prompt (number labels, every department with its duties: a ~5,251-token shared prefix).
Tickets: data/sample/day.jsonl, cycled to --tickets (its real lengths: ~45 tokens with the answer
cue), and a long-ticket row (tickets cut at max_ticket_tokens = 512). Measured, per precision:
exact scoring at several batch sizes (tickets/s, peak GPU memory with the weights, model TFLOP/s),
a plain forward pass over the same tickets in the same sorted batches (no prefix, no labels), the
prefix-attention kernel (cuDNN vs flash), FP8's agreement with bf16, the torch profiler's top
kernels, and (a) the seed recipe and (b) constrained generation, one ticket at a time.
Random weights give no accuracy. Writes bench/results/gpu_llm.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from router.catalog import load_catalog  # noqa: E402
from router.llm.generate import generate_labels  # noqa: E402
from router.llm.load import load_model  # noqa: E402
from router.llm.prompt import build_prompt  # noqa: E402
from router.llm.score import Scorer  # noqa: E402
from tests.tiny_think import QWEN_7B_SHAPE  # noqa: E402

SHAPE_TINY = dict(vocab_size=152064, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
CUDA = torch.cuda.is_available()


def log(*a):
    print(*a, flush=True)


class Phase:
    """Wall time and peak GPU memory of a block."""

    def __enter__(self):
        if CUDA:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if CUDA:
            torch.cuda.synchronize()
        self.peak_gib = torch.cuda.max_memory_allocated() / 2**30 if CUDA else None
        self.seconds = time.perf_counter() - self.t


def build_random(folder: Path, tokenizer_dir: Path, shape: dict) -> Path:
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = Qwen2Config(**shape, max_position_embeddings=32768, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(0)
    with torch.device("cuda" if CUDA else "cpu"):
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model
    free()
    return folder


def free():
    gc.collect()
    if CUDA:
        torch.cuda.empty_cache()


def day_tickets(n: int) -> list[str]:
    """data/sample/day.jsonl's tickets, cycled to n."""
    rows = [json.loads(x)["text"] for x in (ROOT / "data/sample/day.jsonl").read_text(encoding="utf-8").splitlines()]
    return [rows[i % len(rows)] for i in range(n)]


def long_tickets(tok, n: int, tokens: int = 600, seed: int = 0) -> list[str]:
    """Tickets of `tokens` tokens (cut to max_ticket_tokens by the prompt), made by joining sample tickets."""
    rows = [json.loads(x)["text"] for x in (ROOT / "data/sample/history.jsonl").read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        parts = []
        while len(tok("".join(parts), add_special_tokens=False)["input_ids"]) < tokens:
            parts.extend(rng.sample(rows, 8))
        out.append("".join(parts))
    return out


def flops_per_ticket(model, prompt, ticket_tokens: float, trie_nodes: int, prefix: bool = True) -> float:
    """Model FLOPs of scoring one ticket: 2 x decoder linear weights per fed token, attention over the
    prefix (4 x P x head_dim x heads x layers per token), the LM head at the scored positions."""
    c = model.config
    hd = c.hidden_size // c.num_attention_heads
    per_layer = 2 * c.hidden_size * (c.hidden_size + 2 * c.num_key_value_heads * hd + c.hidden_size
                                     + 3 * c.intermediate_size)
    fed = ticket_tokens + trie_nodes
    f = fed * per_layer * c.num_hidden_layers
    if prefix:
        f += fed * 4 * len(prompt.prefix) * hd * c.num_attention_heads * c.num_hidden_layers
        f += (trie_nodes + 1) * 2 * c.hidden_size * c.vocab_size
    return f


def matmul_peaks() -> dict:
    """bf16 and FP8 (torch._scaled_mm, row-wise scales) 8192^3 products, TFLOP/s (mean of 10 after 3)."""
    n = 8192
    a, b = torch.randn(n, n, device="cuda", dtype=torch.bfloat16), torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    fa, fb = a.to(torch.float8_e4m3fn), b.to(torch.float8_e4m3fn)
    sa, sb = torch.ones(n, 1, device="cuda"), torch.ones(1, n, device="cuda")
    out = {}
    for name, fn in (("bf16", lambda: a @ b),
                     ("fp8", lambda: torch._scaled_mm(fa, fb.t(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16))):
        for _ in range(3):
            fn()
        with Phase() as ph:
            for _ in range(10):
                fn()
        out[name] = 2 * n**3 * 10 / ph.seconds / 1e12
    del a, b, fa, fb
    free()
    return out


def seed_recipe(model, prompt, texts) -> float:
    """(a) generate(max_new_tokens=50, do_sample=True, temperature=0.7), one ticket at a time."""
    for t in texts:
        ids = torch.tensor([prompt.ids(t)], device=model.device)
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=50, do_sample=True,
                       temperature=0.7, pad_token_id=prompt.tokenizer.pad_token_id)
    return len(texts)


def plain_forward(model, prompt, texts, bs: int) -> None:
    """A forward pass of the decoder over the ticket parts alone, in the Scorer's sorted batches."""
    ids = sorted((prompt.ticket(t) for t in texts), key=len)
    pad = prompt.tokenizer.pad_token_id
    decoder = model.get_decoder()
    with torch.no_grad():
        for i in range(0, len(ids), bs):
            chunk = ids[i:i + bs]
            L = max(map(len, chunk))
            decoder(input_ids=torch.tensor([[pad] * (L - len(c)) + c for c in chunk], device=model.device))


def profile(scorer, texts, bs: int, rows: int = 15) -> dict:
    """torch profiler over a few batches: the top kernels/ops by self GPU time, and GPU busy share."""
    from torch.profiler import ProfilerActivity, profile as prof

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if CUDA else [])
    with prof(activities=acts) as p, Phase() as ph:
        scorer.logprobs(texts, bs)
    from torch.autograd import DeviceType

    ev = p.key_averages()
    dev = lambda e: getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0))  # noqa: E731
    cpu = lambda e: e.self_cpu_time_total  # noqa: E731
    key = dev if CUDA else cpu
    if CUDA:                                   # kernels only (an op's device time repeats its kernels')
        ev = [e for e in ev if e.device_type == DeviceType.CUDA]
    busy = sum(dev(e) for e in ev) if CUDA else 0
    top = sorted(ev, key=key, reverse=True)[:rows]
    return {"wall_ms": ph.seconds * 1e3, "gpu_busy_ms": busy / 1e3,
            "top": [{"name": e.key[:110], "self_ms": key(e) / 1e3, "share_of_wall": key(e) / 1e3 / (ph.seconds * 1e3),
                     "calls": e.count} for e in top]}


def bench_7b(args, res: dict):
    folder = Path(args.work) / ("tiny-7b-shape" if args.tiny else "random-7b")
    with Phase() as ph:
        build_random(folder, Path(args.tokenizer), SHAPE_TINY if args.tiny else QWEN_7B_SHAPE)
    log(f"built and saved the random model in {ph.seconds:.1f} s")
    catalog = load_catalog(ROOT / "data/departments.json")
    rows = res.setdefault("rows", [])
    peak = res.get("matmul_peak_tflops", {}).get("bf16", 800.0)
    ref = {}                                   # precision -> logprobs of the day tickets at the first batch size
    for precision in args.precisions:
        if precision == "nf4" and not CUDA:
            continue
        free()
        with Phase() as ph:
            model, tok = load_model(str(folder), precision=precision)
        res.setdefault("load", {})[precision] = {"s": round(ph.seconds, 1), "weights_gib": ph.peak_gib,
                                                 "footprint_gib": model.get_memory_footprint() / 2**30}
        log(f"{precision}: loaded through router.llm.load in {ph.seconds:.1f} s, "
            f"{model.get_memory_footprint() / 2**30:.2f} GiB")
        prompt = build_prompt(tok, catalog)
        texts, longs = day_tickets(args.tickets), long_tickets(tok, args.long)
        tmean = float(np.mean([len(prompt.ticket(t)) for t in texts]))
        lmean = float(np.mean([len(prompt.ticket(t)) for t in longs]))
        res.update(prefix_tokens=len(prompt.prefix), ticket_tokens_mean=tmean, long_ticket_tokens_mean=lmean)
        scorer = Scorer(model, prompt)
        res.setdefault("prefix_kernel", {})[precision] = scorer.kernel
        log(f"prefix {len(prompt.prefix)} tokens, tickets {tmean:.1f} tokens on average (long: {lmean:.0f}); "
            f"trie {scorer.trie.size} inner nodes; prefix kernel {scorer.kernel}")
        if precision == "nf4" and args.few:           # (a) and (b): one ticket at a time
            seed_recipe(model, prompt, texts[:1])
            with Phase() as ph:
                n = seed_recipe(model, prompt, texts[:args.few])
            rows.append({"what": "(a) seed recipe: generate 50 tokens, sampled, 1 at a time", "precision": precision,
                         "tickets": n, "tickets_per_s": n / ph.seconds, "peak_gib": ph.peak_gib})
            log(rows[-1])
            generate_labels(model, prompt, texts[:1])
            with Phase() as ph:
                labels, _ = generate_labels(model, prompt, texts[:args.few])
            rows.append({"what": "(b) outlines-constrained label, 1 at a time", "precision": precision,
                         "tickets": len(labels), "tickets_per_s": len(labels) / ph.seconds, "peak_gib": ph.peak_gib})
            log(rows[-1])

        def run(what, sc, tx, bs, tokens, **extra):
            try:
                sc.logprobs(tx[:bs], bs)               # warm-up (and compilation)
                with Phase() as ph:
                    logp = sc.logprobs(tx, bs)
            except Exception as e:                     # report it, go on
                rows.append({"what": what, "precision": precision, "batch": bs, "error": repr(e)[:300]})
                log(rows[-1])
                return None
            assert np.isfinite(logp).all()
            tps = len(tx) / ph.seconds
            tf = tps * flops_per_ticket(model, prompt, tokens, sc.trie.size) / 1e12
            rows.append({"what": what, "precision": precision, "batch": bs, "tickets": len(tx), "tickets_per_s": tps,
                         "peak_gib": ph.peak_gib, "tflops": tf, "share_of_bf16_peak": tf / peak,
                         "ticket_tokens_mean": tokens, **extra})
            log(rows[-1])
            return logp

        for bs in args.batch:
            logp = run("exact scoring, sample day tickets", scorer, texts, bs, tmean, prefix_kernel=scorer.kernel)
            if logp is not None and precision not in ref:
                ref[precision] = logp
        bs = args.batch[min(1, len(args.batch) - 1)]
        with Phase() as ph:
            plain_forward(model, prompt, texts[:bs], bs)   # warm-up
        with Phase() as ph:
            plain_forward(model, prompt, texts, bs)
        tps = len(texts) / ph.seconds
        tf = tps * flops_per_ticket(model, prompt, tmean, 0, prefix=False) / 1e12
        rows.append({"what": "reference: plain forward of the ticket parts (no prefix, no labels)",
                     "precision": precision, "batch": bs, "tickets": len(texts), "tickets_per_s": tps,
                     "peak_gib": ph.peak_gib, "tflops": tf, "share_of_bf16_peak": tf / peak})
        log(rows[-1])
        if CUDA and scorer.kernel == "cudnn":         # the other prefix kernel, for comparison
            run("exact scoring, flash prefix kernel", Scorer(model, prompt, kernel="flash"), texts, bs, tmean,
                prefix_kernel="flash")
        run("exact scoring, long tickets (512 tokens)", scorer, longs, args.long_batch, lmean)
        res.setdefault("profile", {})[precision] = profile(scorer, texts[:4 * bs], bs)
        log(json.dumps(res["profile"][precision]["top"][:8], indent=0))
        del scorer, model
        free()
        Path(args.out).write_text(json.dumps(res, indent=1, ensure_ascii=False))   # what ran so far
    if "bf16" in ref:
        for p, logp in ref.items():
            if p != "bf16":
                res.setdefault("agreement_vs_bf16", {})[p] = {
                    "top1_agreement": float((logp.argmax(1) == ref["bf16"].argmax(1)).mean()),
                    "mean_abs_logp_diff": float(np.abs(logp - ref["bf16"]).mean()),
                    "note": "random weights: near-uniform scores, a harsh test of agreement"}
        log(res.get("agreement_vs_bf16"))


def table(res: dict):
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"LLM router on {res['gpu']} ({res['date']}), prefix {res.get('prefix_tokens')} tokens, "
                    f"tickets {res.get('ticket_tokens_mean', 0):.1f} tokens")
    for c in ("what", "precision", "batch", "tickets/s", "peak GiB", "TFLOP/s"):
        t.add_column(c, justify="left" if c == "what" else "right")
    f = lambda x, spec: "-" if x is None else format(x, spec)  # noqa: E731
    for r in res.get("rows", []):
        t.add_row(r["what"], r["precision"], str(r.get("batch", 1)),
                  "error" if "error" in r else f(r["tickets_per_s"], ".1f"),
                  f(r.get("peak_gib"), ".1f"), f(r.get("tflops"), ".0f"))
    Console(width=160).print(t)
    for p, prof in res.get("profile", {}).items():
        pt = Table(title=f"profile, {p}: {prof['wall_ms']:.0f} ms wall, GPU busy {prof['gpu_busy_ms']:.0f} ms")
        for c in ("op / kernel", "self ms", "share", "calls"):
            pt.add_column(c, justify="left" if c.startswith("op") else "right")
        for e in prof["top"][:12]:
            pt.add_row(e["name"], f"{e['self_ms']:.1f}", f"{e['share_of_wall']:.0%}", str(e["calls"]))
        Console(width=160).print(pt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", required=True, help="the DeepSeek-R1-Distill-Qwen-7B tokenizer folder")
    ap.add_argument("--tiny", action="store_true", help="a tiny model of the same kind (CPU dry run)")
    ap.add_argument("--tickets", type=int, default=2048, help="sample day tickets for exact scoring (cycled)")
    ap.add_argument("--long", type=int, default=256, help="long tickets (512 tokens)")
    ap.add_argument("--long-batch", type=int, default=32)
    ap.add_argument("--few", type=int, default=4, help="tickets for (a) and (b), one at a time; 0 = skip")
    ap.add_argument("--batch", type=int, nargs="+", default=[64, 128, 256], help="scoring batch sizes")
    ap.add_argument("--precisions", nargs="+", default=["nf4", "bf16", "fp8"])
    ap.add_argument("--work", default="/tmp/router-bench", help="scratch folder for the saved random model")
    ap.add_argument("--out", default=str(ROOT / "bench/results/gpu_llm.json"))
    args = ap.parse_args()
    import transformers

    res = {"gpu": torch.cuda.get_device_name() if CUDA else "CPU (dry run)",
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python " + " ".join(sys.argv), "torch": torch.__version__,
           "transformers": transformers.__version__,
           "shape": "tiny" if args.tiny else "DeepSeek-R1-Distill-Qwen-7B (random weights)"}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    try:
        if CUDA:
            res["matmul_peak_tflops"] = matmul_peaks()
            log("matmul peaks, TFLOP/s:", res["matmul_peak_tflops"])
        bench_7b(args, res)
    finally:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=1, ensure_ascii=False))
        table(res)


if __name__ == "__main__":
    main()
