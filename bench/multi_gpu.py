"""1 GPU vs 2: `router classify` tickets/s and LLM fine-tuning tokens/s with 1 and 2 processes, same run.

    python bench/multi_gpu.py --tokenizer DIR     # a machine with 2 GPUs: the 7B shape, random weights
    python bench/multi_gpu.py --tiny              # CPU dry run: a tiny model, 2 gloo processes

Classify: the DeepSeek-R1-Distill-Qwen-7B shape (random weights, built by bench/gpu_llm.py's
build_random with the real tokenizer; ../shared/gpu/README.md), registered with `router zeroshot`
(the shipped default prompt), routes data/sample/history.jsonl's tickets cycled to --tickets through
the real CLI: `python -m router.cli classify` (1 process) and `torchrun --nproc-per-node 2 -m
router.cli classify` (2), each on a fresh copy of the same store. Each is run on --small tickets too:
tickets/s = (tickets - small) / (seconds - seconds for small), so start-up (imports, loading the
weights, the prefix cache) is left out; the rate `router classify` itself reports is kept as well.
Training: router/llm/sft.py's finetune under torchrun with 1 and 2 processes ([sft] defaults: base
auto, micro-batch 4, accumulation 4 on one process and 2 on each of two: 16 examples per step either way),
--steps optimizer steps, the first left out; tokens/s counts each example's whole prompt + answer
(shared prefix included) times the examples trained per second.
The GPU machine needs the wheels of ../shared/gpu/README.md (bitsandbytes, trl, datasets, sqlmodel).
Writes bench/results/multi_gpu.json (or --out) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TINY_ENV = {"ROUTER_LLM__DEVICE": "cpu", "ROUTER_PROMPT__DEPARTMENT": "{label}. {name}",
            "ROUTER_PROMPT__MAX_TICKET_TOKENS": "64", "ROUTER_LLM__BATCH_SIZE": "16"}


def log(*a):
    print(*a, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(n: int, args: list[str], module: bool = True) -> list[str]:
    """The command for `n` processes: plain python for one, torchrun for more."""
    py = [sys.executable]
    if n > 1:
        py += ["-m", "torch.distributed.run", "--nproc-per-node", str(n), "--master-port", str(free_port())]
    return py + (["-m", "router.cli"] if module else []) + args


def run(cmd: list[str], env: dict, cwd: Path) -> tuple[float, str]:
    t = time.perf_counter()
    res = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - t
    if res.returncode != 0:
        sys.exit(f"failed ({res.returncode}): {' '.join(cmd)}\n{res.stderr[-4000:]}")
    return seconds, res.stderr


def build_model(args, work: Path) -> Path:
    if args.tiny:
        from tests.tiny_think import tiny_model
        from router.catalog import load_catalog

        catalog = load_catalog(ROOT / "data/departments.json")
        texts = [d.name + "：" + d.duties for d in catalog.departments] + tickets(200)
        return tiny_model(work / "tiny", texts)
    from bench.gpu_llm import build_random
    from tests.tiny_think import QWEN_7B_SHAPE

    return build_random(work / "random-7b", Path(args.tokenizer), QWEN_7B_SHAPE)


def tickets(n: int) -> list[str]:
    rows = [json.loads(x)["text"] for x in (ROOT / "data/sample/history.jsonl").read_text(encoding="utf-8").splitlines()]
    return [rows[i % len(rows)] for i in range(n)]


def day(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"T{i:06d}", "text": t}, ensure_ascii=False) + "\n"
                            for i, t in enumerate(tickets(n))), encoding="utf-8")
    return path


def bench_classify(args, model: Path, work: Path, env: dict) -> list[dict]:
    home0 = work / "home0"
    for h in work.glob("home*"):
        shutil.rmtree(h)
    run([sys.executable, "-m", "router.cli", "zeroshot", "--base", str(model), "--promote"],
        {**env, "ROUTER_PATHS__HOME": str(home0)}, work)
    files = {n: day(work / f"day{n}.jsonl", n) for n in (args.small, args.tickets)}
    shutil.copytree(home0, work / "home-warm")   # a first run warms the caches (discarded)
    run(launch(1, ["classify", str(files[args.small]), "-o", str(work / "out-warm.jsonl")]),
        {**env, "ROUTER_PATHS__HOME": str(work / "home-warm")}, work)
    rows = []
    for procs in (1, 2):
        t = {}
        for n, f in files.items():
            home = work / f"home-{procs}-{n}"
            shutil.copytree(home0, home)
            t[n], err = run(launch(procs, ["classify", str(f), "-o", str(work / f"out-{procs}-{n}.jsonl")]),
                            {**env, "ROUTER_PATHS__HOME": str(home)}, work)
            reported = float(re.search(r"([\d.]+)\s+tickets/s", err).group(1))
            log(f"classify, {procs} process(es), {n} tickets: {t[n]:.1f} s ({reported:.1f} tickets/s reported)")
        rows.append({"processes": procs, "tickets": args.tickets, "seconds": t[args.tickets],
                     "seconds_small": t[args.small], "small": args.small, "reported_tickets_per_s": reported,
                     "tickets_per_s": (args.tickets - args.small) / (t[args.tickets] - t[args.small])})
    same = (work / f"out-1-{args.tickets}.jsonl").read_bytes() == (work / f"out-2-{args.tickets}.jsonl").read_bytes()
    for r in rows:
        r["output_identical"] = same
    return rows


def bench_train(args, model: Path, work: Path, env: dict) -> list[dict]:
    rows = []
    for procs in (1, 2):
        out = work / f"train-{procs}.json"
        cmd = launch(procs, [str(Path(__file__).resolve()), "--train-worker", str(model), "--out", str(out),
                             "--steps", str(args.steps)] + (["--tiny"] if args.tiny else []), module=False)
        run(cmd, env, work)
        r = json.loads(out.read_text())
        log(f"training, {procs} process(es): {r['tokens_per_s']:.0f} tokens/s ({r['note']})")
        rows.append(r)
    return rows


def train_worker(args) -> None:
    """Under torchrun (or alone): `args.steps` optimizer steps of finetune; rank 0 writes the figures."""
    from transformers import AutoTokenizer, TrainerCallback

    from router import config, parallel
    from router.catalog import load_catalog
    from router.llm import sft
    from router.llm.prompt import build_prompt

    w = parallel.init()
    cfg = config.load()
    catalog = load_catalog(ROOT / "data/departments.json")
    rows = [json.loads(x) for x in (ROOT / "data/sample/history.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if r["label"] in catalog.by_id]
    over = {"max_steps": args.steps, "save_steps": 10**6, "logging_steps": 1}
    if args.tiny:
        over.update(batch_size=2, grad_accum=4, lora_r=8, lora_alpha=16, gradient_checkpointing=False, max_seq=256)
    s = sft.settings(cfg, **over)
    size = s.batch_size * parallel.accumulation(s.grad_accum, w.size) * w.size
    texts, labels = [r["text"] for r in rows], [r["label"] for r in rows]
    n = size * (args.steps + 1)
    texts, labels = (texts * (n // len(texts) + 1))[:n], (labels * (n // len(labels) + 1))[:n]

    class Clock(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_end(self, a, state, control, **kw):
            self.times.append(time.perf_counter())

    clock = Clock()
    sft.finetune(str(args.train_worker), texts, labels, catalog, cfg, Path(args.out).with_suffix(".work"),
                 resume=False, callbacks=[clock], progress=False, **over)
    if not w.lead:
        return
    prompt = build_prompt(AutoTokenizer.from_pretrained(args.train_worker), catalog, cfg.prompt)
    ex = sft.examples(prompt, texts, labels, s.max_seq, s.share_prefix)["input_ids"]
    tokens = sum(map(len, ex)) / len(ex) + (len(prompt.prefix) if s.share_prefix else 0)
    sec = clock.times[-1] - clock.times[0]
    steps = len(clock.times) - 1
    Path(args.out).write_text(json.dumps({
        "processes": w.size, "steps_timed": steps, "seconds": sec, "effective_batch": size,
        "tokens_per_example": tokens, "examples_per_s": steps * size / sec,
        "tokens_per_s": steps * size * tokens / sec, "share_prefix": s.share_prefix,
        "note": parallel.batch_note(s.batch_size, s.grad_accum, w.size) if w.size > 1 else
        f"batch {s.batch_size} x {s.grad_accum} = {size}"}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", help="the DeepSeek-R1-Distill-Qwen-7B tokenizer folder (GPU run)")
    ap.add_argument("--tiny", action="store_true", help="a tiny model on the CPU, 2 gloo processes (dry run)")
    ap.add_argument("--tickets", type=int, default=8192, help="tickets routed (history cycled)")
    ap.add_argument("--small", type=int, default=1024, help="the short run whose time is subtracted")
    ap.add_argument("--steps", type=int, default=6, help="optimizer steps trained (the first is not timed)")
    ap.add_argument("--work", default="/tmp/router-multi-gpu", help="scratch folder")
    ap.add_argument("--out", default=str(ROOT / "bench/results/multi_gpu.json"))
    ap.add_argument("--train-worker", help=argparse.SUPPRESS)     # the model folder: run as a training process
    args = ap.parse_args()
    if args.train_worker:
        return train_worker(args)
    if not args.tiny and not args.tokenizer:
        ap.error("--tokenizer is needed (or --tiny)")
    if args.tiny and args.tickets == ap.get_default("tickets"):
        args.tickets, args.small, args.steps = 256, 64, 3
    import torch

    gpus = torch.cuda.device_count()
    if not args.tiny and gpus < 2:
        sys.exit(f"needs 2 GPUs, {gpus} visible")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUTER_")}
    env.update(PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
               PYTHONUNBUFFERED="1", COLUMNS="200", ROUTER_QUEUE__SEED="0", **(TINY_ENV if args.tiny else {}))
    t = time.perf_counter()
    model = build_model(args, work)
    log(f"model in {model} ({time.perf_counter() - t:.0f} s)")
    res = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "device": torch.cuda.get_device_name(0) if gpus else "cpu (gloo)", "gpus": gpus,
           "model": "tiny (tests/tiny_think.py)" if args.tiny else "DeepSeek-R1-Distill-Qwen-7B shape, random weights",
           "classify": bench_classify(args, model, work, env), "train": bench_train(args, model, work, env)}
    for part, key in (("classify", "tickets_per_s"), ("train", "tokens_per_s")):
        one, two = (r[key] for r in res[part])
        res[f"{part}_speedup"] = two / one
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=1, ensure_ascii=False))
    log(f"\n{res['device']}, {res['model']}")
    log(f"{'':28}{'1 process':>14}{'2 processes':>14}{'speed-up':>10}")
    for part, key, unit in (("classify", "tickets_per_s", "tickets/s"), ("train", "tokens_per_s", "tokens/s")):
        one, two = (r[key] for r in res[part])
        log(f"{part + ' ' + unit:28}{one:14.1f}{two:14.1f}{two / one:10.2f}")
    log(f"classify output identical 1 vs 2 processes: {res['classify'][0]['output_identical']}")
    if args.tiny:
        log("(a CPU dry run: it checks the script end to end; its speeds mean nothing)")
    log(f"-> {args.out}")


if __name__ == "__main__":
    main()
