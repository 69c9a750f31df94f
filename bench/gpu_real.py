"""The LLM router on real weights (Qwen2.5-Coder-0.5B-Instruct, tests/qwen.py), through the product's
own classes, on the Chinese sample, Banking77 and CLINC150: zero-shot, the few-shot block, LoRA, the
TF-IDF baseline and the ensemble; then incremental against from-scratch fine-tuning.

    python bench/gpu_real.py --model DIR [--steps cn,banking77,incremental,clinc150,shape7b]
                             [--tokenizer7b DIR] [--out bench/results/gpu_real.json]
    python bench/gpu_real.py --tiny      # the same steps on a tiny random Qwen2 on the CPU (a dry run)

Data (nothing tuned on a test split):
- cn: data/sample/history.jsonl (5,000) -> data/sample/test.jsonl (803); the catalogue's 70
  departments with their duties; the default [prompt] (number labels).
- banking77: ../shared/datasets/banking77/train.csv, stratified 80/20, seed 42 (the 20% is the test);
  77 intents, names only, an English prompt.
- clinc150: ../shared/datasets/clinc150/train_val.json: train -> val (in-scope); 150 intents.
Each train part: 10% (stratified, seed 43) is the calibration slice (temperatures, ensemble weights),
the rest is what the models fit. `--max-train` (Banking77, CLINC150) / `--max-test` cap the sizes
(stratified).

Models: the baseline ([baseline] defaults, fitted in a separate process while the GPU works); the LLM
zero-shot; with `--shots k` examples per department in the shared prefix (picked from the fit part);
LoRA ([sft] with bf16 base, batch 32, lr 2e-4, `--epochs`); the ensemble (router/ensemble.py) of the
LoRA model and the baseline, weights fitted on the calibration slice.

incremental (after cn): stages of 1,000 / 2,500 / 5,000 labels (the fit part in its order); at each later
stage a warm start from the previous stage's incremental adapter on the new labels + `--replay` older
ones ([sft] incremental) against a from-scratch fit on all of them: accuracy and seconds.

scale: the same at 8,000 / 10,000 labels (`--scale-stages`; 1 epoch, `--epochs scale:N`), from the sample's
history and the month's 30 days pooled (16,531 generated Chinese tickets, shuffled) -> month/test.jsonl;
`--scale-months N` adds N more generated months to the pool (3: 51,467 labels, for a 50,000 stage).
scale_baseline: the baseline on the same data and stages (CPU; no model needed).

shape7b (--tokenizer7b DIR): the DeepSeek-R1-Distill-Qwen-7B shape (random weights, the real tokenizer in DIR)
through LLMClassifier.fit with the [sft] defaults (NF4 base, micro-batch 4 x 4, checkpointing) on
the sample's tickets and the default prompt: seconds per example, hence minutes for a from-scratch
and an incremental night at 1k / 10k / 50k labels.
"""

from __future__ import annotations

import csv
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from router import ROOT, config  # noqa: E402
from router.catalog import Catalog, Department, load_catalog  # noqa: E402
from router.classifier import model_input  # noqa: E402

SHARED = [ROOT.parent / "shared" / "datasets"]   # --shared
EN = {"system": "", "think": "no", "label": "number", "department": "{label}. {name}", "max_ticket_tokens": 96,
      "shot": "Message: {ticket}\nAnswer: {label}", "shots_header": "Examples:\n{shots}\n\n"}
USER = {"banking77": "Which intent does this bank customer's message express? Answer with the intent's number "
                     "only.\n\nIntents:\n{departments}\n\n{examples}Message: {ticket}",
        "clinc150": "Which intent does this request to a voice assistant express? Answer with the intent's "
                    "number only.\n\nIntents:\n{departments}\n\n{examples}Request: {ticket}"}
LOG = print


def stratified(labels, frac: float, seed: int) -> tuple[list[int], list[int]]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    counts = {y: labels.count(y) for y in set(labels)}
    strat = [y if counts[y] > 1 else "__rare__" for y in labels]
    if min(frac, 1 - frac) * len(labels) < len(set(strat)):   # too few rows to stratify
        strat = None
    a, b = train_test_split(idx, test_size=frac, stratify=strat, random_state=seed)
    return sorted(a.tolist()), sorted(b.tolist())


def cap(rows: list[tuple[str, str]], n: int | None, seed: int) -> list[tuple[str, str]]:
    if not n or len(rows) <= n:
        return rows
    if n < len({y for _, y in rows}):     # fewer rows than classes: a plain seeded sample
        return [rows[i] for i in sorted(np.random.default_rng(seed).choice(len(rows), n, replace=False))]
    keep, _ = stratified([y for _, y in rows], 1 - n / len(rows), seed)
    return [rows[i] for i in keep]


def dataset(name: str, max_train: int | None, max_test: int | None):
    """(catalog, prompt template dict, train rows, test rows); rows are (text, label)."""
    if name == "cn":
        rows = lambda f: [(model_input(r["text"], r.get("title")), r["label"])  # noqa: E731
                          for r in map(json.loads, (ROOT / "data" / "sample" / f).read_text("utf-8").splitlines())
                          if r.get("label")]
        catalog = load_catalog(ROOT / "data" / "departments.json")
        train, test, template = rows("history.jsonl"), rows("test.jsonl"), {}
    else:
        if name == "banking77":
            data = [(r["text"], r["category"]) for r in csv.DictReader((SHARED[0] / name / "train.csv").open())]
            tr, te = stratified([y for _, y in data], 0.2, 42)
            train, test = [data[i] for i in tr], [data[i] for i in te]
        else:
            d = json.loads((SHARED[0] / name / "train_val.json").read_text())
            train, test = [tuple(x) for x in d["train"]], [tuple(x) for x in d["val"]]
        intents = sorted({y for _, y in train})
        catalog = Catalog([Department(i, i.replace("_", " "), "") for i in intents])
        template = {**EN, "user": USER[name]}
    return catalog, template, cap(train, max_train if name != "cn" else None, 1), cap(test, max_test, 2)


def baseline_job(name: str, fit: list, cal: list, test: list, classes: list[str]) -> dict:
    """In a separate process: the baseline fitted, its temperature on the calibration slice, and its
    probabilities on the calibration slice and the test (for the ensemble)."""
    from router import calibration
    from router.baseline import BaselineClassifier

    t0 = time.perf_counter()
    clf = BaselineClassifier.from_settings(config.Settings(), classes).fit(*zip(*fit))
    pos = {c: i for i, c in enumerate(classes)}
    raw_cal = clf.predict_proba([t for t, _ in cal])
    clf.temperature = calibration.fit_proba(raw_cal, np.array([pos[y] for _, y in cal]))
    return {"clf": clf, "seconds": time.perf_counter() - t0}


def accuracy(proba, rows, classes) -> float:
    pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    return float(np.mean(pred == np.array([y for _, y in rows], dtype=object)))


def macro_f1(proba, rows, classes) -> float:
    from sklearn.metrics import f1_score

    pred = np.asarray(classes, dtype=object)[proba.argmax(axis=1)]
    return float(f1_score([y for _, y in rows], pred, average="macro", zero_division=0))


def settings(home: Path, device: str, template: dict, epochs: float, batch: int, lr: float, **sft) -> config.Settings:
    cfg = config.Settings()
    cfg.paths.home = str(home)
    cfg.llm.device = device
    cfg.prompt = config.Prompt(**{**cfg.prompt.model_dump(), **template})
    cfg.sft = config.SFT(**{**cfg.sft.model_dump(), "base": "bf16", "epochs": epochs, "batch_size": batch,
                            "grad_accum": 1, "learning_rate": lr, "gradient_checkpointing": False,
                            "optim": "adamw_torch", "max_seq": 256, "logging_steps": 20, "save_steps": 10 ** 6,
                            "warmup_ratio": 0.03, **sft})
    return cfg


def llm(model: str, cfg, catalog, classes, device: str, batch: int, shots=()):
    from router.llm.model import LLMClassifier

    return LLMClassifier.from_settings(cfg, classes, catalog, base=model, device=device,
                                       precision="bf16" if device.startswith("cuda") else "auto",
                                       batch_size=batch, shots=list(shots))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run_dataset(name: str, args, pool, home: Path) -> dict:
    from router.ensemble import EnsembleClassifier
    from router.llm.prompt import pick_shots

    catalog, template, train, test = dataset(name, args.max_train, args.max_test)
    classes = catalog.ids
    fit_i, cal_i = stratified([y for _, y in train], 0.1, 43)
    fit, cal = [train[i] for i in fit_i], [train[i] for i in cal_i]
    LOG(f"[{name}] {len(classes)} classes: fit {len(fit)}, calibration {len(cal)}, test {len(test)}")
    job = pool.submit(baseline_job, name, fit, cal, test, classes)
    cfg = settings(home / name, args.device, template, args.epochs[name], args.batch, args.lr)
    texts = [t for t, _ in test]
    out: dict = {"classes": len(classes), "fit": len(fit), "calibration": len(cal), "test": len(test)}

    zs = llm(args.model, cfg, catalog, classes, args.device, args.score_batch)
    p, s = timed(lambda: zs.predict_proba(texts))
    out["zero_shot"] = {"accuracy": accuracy(p, test, classes), "macro_f1": macro_f1(p, test, classes),
                        "seconds": s, "prefix_tokens": len(zs.prompt.prefix)}
    LOG(f"[{name}] zero-shot {out['zero_shot']}")
    k = args.shots[name]
    if k:
        shots = pick_shots(*zip(*fit), k, 42, classes)
        fs = llm(args.model, cfg, catalog, classes, args.device, args.score_batch, shots)
        fs._model, fs._tokenizer = zs._model, zs._tokenizer      # the same weights; only the prompt differs
        from router.llm.prompt import build_prompt

        fs._prompt = build_prompt(fs._tokenizer, catalog, fs._template().model_dump(), classes, shots)
        p, s = timed(lambda: fs.predict_proba(texts))
        out["few_shot"] = {"k": k, "shots": len(shots), "accuracy": accuracy(p, test, classes),
                           "macro_f1": macro_f1(p, test, classes), "seconds": s,
                           "prefix_tokens": len(fs.prompt.prefix)}
        LOG(f"[{name}] few-shot {out['few_shot']}")
        del fs
    del zs
    free()

    lora = llm(args.model, cfg, catalog, classes, args.device, args.score_batch)
    _, s = timed(lambda: lora.fit(*zip(*fit)))
    p, s2 = timed(lambda: lora.predict_proba(texts))
    out["lora"] = {"accuracy": accuracy(p, test, classes), "macro_f1": macro_f1(p, test, classes),
                   "train_seconds": s, "score_seconds": s2, "epochs": args.epochs[name], "batch": args.batch,
                   "lr": args.lr, "peak_gib": peak()}
    LOG(f"[{name}] LoRA {out['lora']}")

    base = job.result()
    bclf = base["clf"]
    pb = bclf.predict_proba(texts)
    out["baseline"] = {"accuracy": accuracy(pb, test, classes), "macro_f1": macro_f1(pb, test, classes),
                       "seconds": base["seconds"]}
    LOG(f"[{name}] baseline {out['baseline']}")
    ens = EnsembleClassifier([lora, bclf], classes)
    tuning = ens.tune(*zip(*cal))
    pe = ens.predict_proba(texts)
    out["ensemble"] = {"accuracy": accuracy(pe, test, classes), "macro_f1": macro_f1(pe, test, classes),
                       "tuning": tuning}
    pm = 0.5 * (lora.predict_proba(texts) + pb)
    out["mean_of_two"] = {"accuracy": accuracy(pm, test, classes)}
    LOG(f"[{name}] ensemble {out['ensemble']}; plain mean {out['mean_of_two']}")
    out["_fit"] = fit
    out["_llm"] = lora
    return out


def incremental(args, home: Path, res: dict) -> dict:
    """cn: warm start on new + replay against from scratch at growing label counts."""
    _, _, _, test = dataset("cn", args.max_train, args.max_test)
    fit = res["cn"]["_fit"]
    last = (res["cn"]["_llm"], res["cn"]["lora"]["train_seconds"]) if "_llm" in res["cn"] else None
    return ladder(args, home / "inc", fit, test, [n for n in args.stages if n < len(fit)] + [len(fit)],
                  args.epochs["cn"], last)


def month_pool(seed: int = 0, months: int = 0) -> tuple[list, list]:
    """The Chinese labels beyond the sample's 5,000: data/sample/history.jsonl plus the 30 days of
    data/sample/month/ (every ticket with its true department; no-fit and special-channel tickets left out),
    and the days of `months` more months generated here (data/generate.py's `write_month`, seeds 43, 44, ...;
    about 11,900 labels each), shuffled (`seed`); the test is month/test.jsonl's in-scope tickets."""
    ids = set(load_catalog(ROOT / "data" / "departments.json").ids)
    folder = ROOT / "data" / "sample"

    def rows(f: Path):
        return [(model_input(r["text"], r.get("title")), r["label"])
                for r in map(json.loads, f.read_text("utf-8").splitlines()) if r.get("label") in ids]

    def days(month: Path):
        return [x for f in sorted(month.glob("day*.jsonl")) for x in rows(f)]

    pool = rows(folder / "history.jsonl") + days(folder / "month")
    if months:
        sys.path.insert(0, str(ROOT / "data"))
        import generate as g

        g.load_departments()
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(1, months + 1):
                g.write_month(42 + k, f"{tmp}/{k}", g.history_counts())
                pool += days(Path(tmp, str(k), "month"))
    pool = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
    return pool, rows(folder / "month" / "test.jsonl")


def scale(args, home: Path) -> dict:
    """cn at larger label counts (the sample and the month pooled, `month_pool`): from scratch against a warm
    start from the previous stage on its new labels + `--replay`, at `--scale-stages`."""
    pool, test = month_pool(months=args.scale_months)
    if args.tiny:
        pool, test = pool[:400], test[:60]
    stages = [min(n, len(pool)) for n in args.scale_stages]
    return {"pool": len(pool), "test_rows": len(test), **ladder(args, home / "scale", pool, test, stages,
                                                                  args.epochs["scale"])}


def scale_baseline(args) -> dict:
    """The baseline ([baseline] defaults) on the scale step's data and stages: what the LLM has to beat there."""
    pool, test = month_pool(months=args.scale_months)
    if args.tiny:
        pool, test = pool[:400], test[:60]
    classes = load_catalog(ROOT / "data" / "departments.json").ids
    rows = []
    for n in [min(n, len(pool)) for n in args.scale_stages]:
        from router.baseline import BaselineClassifier

        clf, s = timed(lambda: BaselineClassifier.from_settings(config.Settings(), classes).fit(*zip(*pool[:n])))
        rows.append({"labels": n, "accuracy": accuracy(clf.predict_proba([t for t, _ in test]), test, classes),
                     "seconds": s})
        LOG(f"[scale baseline] {rows[-1]}")
    return {"pool": len(pool), "test": len(test), "rows": rows}


def ladder(args, home: Path, fit: list, test: list, stages: list[int], epochs: float, last=None) -> dict:
    """At each stage n: an LLM fit from scratch on fit[:n], and (after the first stage) a warm start from the
    previous stage's incremental model on the new labels + `--replay` older ones; accuracy on `test` and
    seconds. `last`: (a model already fit from scratch on all of `fit`, its seconds), reused at the last stage."""
    catalog, template, _, _ = dataset("cn", None, None)
    classes, texts = catalog.ids, [t for t, _ in test]
    out = {"stages": stages, "replay": args.replay, "epochs": epochs, "test": len(test), "rows": []}
    prev = None
    for n in stages:
        cfg = settings(home / str(n), args.device, template, epochs, args.batch, args.lr,
                       incremental=True, replay=args.replay)
        row = {"labels": n}
        if last is not None and n == len(fit):
            scratch, row["scratch_seconds"] = last
        else:
            scratch = llm(args.model, cfg, catalog, classes, args.device, args.score_batch)
            _, row["scratch_seconds"] = timed(lambda: scratch.fit(*zip(*fit[:n])))
        row["scratch_accuracy"] = accuracy(scratch.predict_proba(texts), test, classes)
        if prev is None:
            prev = scratch
        else:
            inc = llm(args.model, cfg, catalog, classes, args.device, args.score_batch)
            assert inc.warm_start(prev)
            _, row["incremental_seconds"] = timed(lambda: inc.fit(*zip(*fit[:n])))
            row.update(incremental_accuracy=accuracy(inc.predict_proba(texts), test, classes), **inc.fit_info)
            prev = inc
        out["rows"].append(row)
        LOG(f"[incremental] {row}")
        free()
    return out


def shape7b(args, home: Path) -> dict:
    """Seconds per training example of the 7B shape through LLMClassifier.fit ([sft] defaults, NF4)."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM
    from transformers import TrainerCallback

    from router.llm.model import LLMClassifier
    from tests.tiny_think import QWEN_7B_SHAPE

    folder = home / "q7b"
    shape = QWEN_7B_SHAPE if not args.tiny else {**QWEN_7B_SHAPE, "hidden_size": 64, "intermediate_size": 128,
                                                 "num_hidden_layers": 2, "num_attention_heads": 4,
                                                 "num_key_value_heads": 2}
    if not (folder / "config.json").exists():
        torch.manual_seed(0)
        torch.set_default_dtype(torch.bfloat16)
        with torch.device(args.device):
            m = Qwen2ForCausalLM(Qwen2Config(**shape))
        torch.set_default_dtype(torch.float32)
        m.save_pretrained(folder)
        AutoTokenizer.from_pretrained(args.shape7b).save_pretrained(folder)
        del m
        free()

    class Steps(TrainerCallback):
        def __init__(self):
            self.t = []

        def on_step_end(self, a, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t.append(time.perf_counter())

    catalog = load_catalog(ROOT / "data" / "departments.json")
    rows = [json.loads(x) for x in (ROOT / "data" / "sample" / "history.jsonl").read_text("utf-8").splitlines()]
    cfg = config.Settings()
    cfg.paths.home, cfg.llm.device = str(home / "q7b-run"), args.device
    cfg.sft = config.SFT(**{**cfg.sft.model_dump(), "base": "nf4", "max_steps": args.steps7b, "logging_steps": 5,
                            "save_steps": 10 ** 6})
    if args.tiny:
        cfg.prompt = config.Prompt(department="{label}. {name}", max_ticket_tokens=48)
    n = cfg.sft.batch_size * cfg.sft.grad_accum * args.steps7b
    steps = Steps()
    import router.llm.sft as sft_mod

    orig = sft_mod.trainer
    sft_mod.trainer = lambda *a, **k: orig(*a[:6], [*a[6], steps], *a[7:], **k)   # callbacks: 7th positional
    clf = LLMClassifier.from_settings(cfg, catalog.ids, catalog, base=str(folder), device=args.device)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    _, total = timed(lambda: clf.fit([model_input(r["text"]) for r in rows[:n]], [r["label"] for r in rows[:n]]))
    sft_mod.trainer = orig
    per_step = float(np.median(np.diff(steps.t[1:]))) if len(steps.t) > 2 else total / args.steps7b
    per_example = per_step / (cfg.sft.batch_size * cfg.sft.grad_accum)
    nights = {}
    for labels in (1000, 10000, 50000):
        new = args.new_per_night
        nights[labels] = {"scratch_minutes": labels * per_example / 60,
                          "incremental_minutes": (new + min(args.replay, labels)) * per_example / 60}
    return {"optimizer_step_seconds": per_step, "seconds_per_example": per_example, "steps": args.steps7b,
            "examples_per_step": cfg.sft.batch_size * cfg.sft.grad_accum, "total_seconds": total,
            "peak_gib": peak(), "new_labels_per_night": args.new_per_night, "replay": args.replay,
            "epochs": 1, "nights": nights}


def free():
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak() -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated() / 2 ** 30, 2) if torch.cuda.is_available() else None


def main(model: str = typer.Option("", help="the converted Qwen2.5-Coder-0.5B-Instruct folder (tests/qwen.py)"),
         steps: str = typer.Option("cn,banking77,incremental,clinc150", help="in this order: data sets (cn, "
                                   "banking77, clinc150), incremental (after cn), shape7b (needs --tokenizer7b)"),
         tokenizer7b: str = typer.Option("", help="the 7B tokenizer folder, for the shape7b step"),
         tiny: bool = typer.Option(False, help="a tiny random Qwen2 on the CPU, small sizes (a dry run)"),
         max_train: int = typer.Option(0), max_test: int = typer.Option(0),
         epochs: str = typer.Option("cn:2,banking77:2,clinc150:2,scale:1"),
         shots: str = typer.Option("cn:2,banking77:2,clinc150:1", help="few-shot k per department"),
         batch: int = typer.Option(32), lr: float = typer.Option(2e-4), score_batch: int = typer.Option(64),
         stages: str = typer.Option("1000,2500,5000"), replay: int = typer.Option(500),
         scale_stages: str = typer.Option("8000,10000", help="label counts of the scale step"),
         scale_months: int = typer.Option(0, help="more generated months in the scale step's pool (3: ~52k labels)"),
         steps7b: int = typer.Option(12), new_per_night: int = typer.Option(500),
         home: Path = typer.Option(Path("/tmp/gpu-real")),
         shared: Path = typer.Option(SHARED[0], help="the shared datasets folder"),
         out: Path = typer.Option(ROOT / "bench" / "results" / "gpu_real.json")):
    import torch

    args = type("Args", (), {})()
    args.model, args.max_train, args.max_test = model, max_train or None, max_test or None
    args.epochs = {"scale": 1.0, **{k: float(v) for k, v in (x.split(":") for x in epochs.split(","))}}
    args.shots = {k: int(v) for k, v in (x.split(":") for x in shots.split(","))}
    args.batch, args.lr, args.score_batch, args.replay = batch, lr, score_batch, replay
    args.scale_stages = [int(x) for x in scale_stages.split(",")]
    args.scale_months = scale_months
    args.stages, args.steps7b, args.new_per_night, args.shape7b = [int(x) for x in stages.split(",")], steps7b, \
        new_per_night, tokenizer7b
    args.device = "cuda" if torch.cuda.is_available() else "cpu"
    SHARED[0] = shared
    args.tiny = tiny
    if tiny:
        from tests.tiny_think import tiny_model

        texts = [d.name + d.duties for d in load_catalog(ROOT / "data" / "departments.json").departments]
        args.model = str(tiny_model(home / "tiny", texts + ["bank card transfer top up account request"]))
        args.max_train, args.max_test = args.max_train or 300, args.max_test or 60
        args.scale_stages = [200, 300]
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    res: dict = {"gpu": gpu, "model": "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF dequantized, bf16)" if not tiny
                 else "tiny random Qwen2 (dry run)", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
                 "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                 "torch": torch.__version__, "command": "python bench/gpu_real.py " + " ".join(sys.argv[1:])}
    out.parent.mkdir(parents=True, exist_ok=True)

    def save():
        clean = {k: ({kk: vv for kk, vv in v.items() if not kk.startswith("_")} if isinstance(v, dict) else v)
                 for k, v in res.items()}
        out.write_text(json.dumps(clean, indent=1, ensure_ascii=False, default=str))

    t0 = time.perf_counter()
    with ProcessPoolExecutor(3) as pool:
        for step in [d for d in steps.split(",") if d]:
            if step == "incremental":
                res["incremental"] = incremental(args, home, res)
                res["cn"].pop("_llm", None)
            elif step == "scale":
                res["scale"] = scale(args, home)
            elif step == "scale_baseline":
                res["scale_baseline"] = scale_baseline(args)
            elif step == "shape7b":
                res["shape7b"] = shape7b(args, home)
            else:
                res[step] = run_dataset(step, args, pool, home)
                if step != "cn":
                    res[step].pop("_llm")
            free()
            res["seconds"] = round(time.perf_counter() - t0)
            save()
            LOG(f"--- {step} done at {time.perf_counter() - t0:.0f} s")
    save()
    LOG(json.dumps({k: v for k, v in res.items()}, indent=1, ensure_ascii=False, default=str)[:6000])


if __name__ == "__main__":
    typer.run(main)
