"""LLMClassifier: the LLM router behind the common Classifier interface.

    clf = LLMClassifier.from_settings(cfg, catalog.ids, catalog)      # zero-shot: no adapter
    proba = clf.predict_proba(texts)     # exact label scoring, softmax(log P(label) / temperature)
    clf.calibrate(held_texts, held_labels)   # fits the temperature, returns ECE before/after
    clf.fit(texts, labels)               # QLoRA fine-tuning through router/llm/sft.py
    clf.save(folder); LLMClassifier.load(folder)

A saved version is meta.json (kind "llm", base model, adapter, temperature, classes, labels,
prompt template and the departments' names and duties as trained) plus adapter/ when fine-tuned.
The weights are loaded on first use, so listing or registering versions stays cheap.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Sequence

import numpy as np

from router.calibration import ece, fit_temperature, softmax
from router.catalog import Catalog, Department
from router.classifier import Classifier
from router.config import LLM, Prompt as Template, Settings
from router.parallel import world

TRAINED_ON = "trained_on.npy"   # in an adapter folder: keys of the (ticket, department) pairs it was trained on
_LLM = LLM()        # the declared [llm] defaults (router/config.py)
PROGRESS_MIN = 256   # show a progress bar from this many tickets on


def pair_keys(texts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """A 64-bit key per (ticket text, department) pair."""
    return np.array([int.from_bytes(hashlib.sha1(f"{t}\x1f{y}".encode()).digest()[:8], "little")
                     for t, y in zip(texts, labels)], dtype=np.uint64)


class LLMClassifier(Classifier):
    kind = "llm"

    def __init__(self, cfg: Settings, classes: Sequence[str] | None = None, catalog: Catalog | None = None,
                 base: str = _LLM.base, adapter: str | Path | None = None, gguf_file: str = _LLM.gguf_file,
                 template: dict | None = None, temperature: float = _LLM.temperature, decode: str = _LLM.decode,
                 device: str = _LLM.device, batch_size: int = _LLM.batch_size, quantize=_LLM.quantize,
                 precision: str = _LLM.precision, shots: Sequence | None = None):
        """Stores its parameters, as a scikit-learn estimator does; `from_settings` and `load` fill them
        from the settings. `cfg`: the settings `fit` uses ([sft], [paths]); `classes`: default the
        catalogue's departments; `template`: the [prompt] keys, default the declared ones."""
        self.classes, self.cfg, self.catalog = classes, cfg, catalog
        self.base, self.adapter, self.gguf_file, self.template = base, adapter, gguf_file, template
        self.temperature, self.decode, self.device, self.batch_size = temperature, decode, device, batch_size
        self.quantize, self.precision = quantize, precision          # precision: nf4 | bf16 | fp8 | auto (load.py)
        self.shots = [tuple(x) for x in shots or []]   # few-shot examples (text, department) in the prefix
        self._model = self._tokenizer = self._prompt = self._scorer = None
        self._warm: Path | None = None           # warm_start: the adapter the next fit goes on from
        self.fit_info = {}

    @classmethod
    def from_settings(cls, cfg: Settings, classes, catalog, **params) -> "LLMClassifier":
        """A model run as [llm] and prompted as [prompt] say; `params` override single parameters."""
        llm = cfg.llm
        return cls(**{"classes": classes, "cfg": cfg, "catalog": catalog, "base": llm.base, "gguf_file": llm.gguf_file,
                      "template": cfg.prompt.model_dump(), "temperature": llm.temperature, "decode": llm.decode,
                      "device": llm.device, "batch_size": llm.batch_size, "quantize": llm.quantize,
                      "precision": llm.precision, **params})

    @property
    def classes_(self) -> np.ndarray:
        if self.catalog is None:
            raise ValueError("the LLM router needs the department catalogue (names and duties) for its prompt")
        return np.array(list(self.classes) if self.classes is not None else self.catalog.ids, dtype=object)

    def _template(self) -> Template:
        return Template(**(self.template or {}))

    # -- the model, loaded on first use -------------------------------------------------------
    def _load(self):
        if self._model is None:
            from router.llm.load import load_model
            from router.llm.prompt import build_prompt

            quantize = None if self.quantize in ("auto", None) else bool(self.quantize)
            self._model, self._tokenizer = load_model(str(self.base), adapter=self.adapter,
                                                      gguf_file=self.gguf_file or None, device=self.device,
                                                      quantize=quantize, precision=self.precision)
            self._prompt = build_prompt(self._tokenizer, self.catalog, self._template().model_dump(),
                                        list(self.classes_), self.shots)
        return self._model

    @property
    def prompt(self):
        self._load()
        return self._prompt

    @property
    def labels(self) -> list[str]:
        return self.prompt.labels

    def _progress(self, n: int, what: str):
        """(advance, close) for a rich progress bar on stderr when the work is long."""
        if n < PROGRESS_MIN or world().rank > 0:  # one bar: rank 0's (router/parallel.py)
            return None, lambda: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        p = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                     console=Console(stderr=True), transient=True)
        task = p.add_task(what, total=n)
        p.start()
        return (lambda k: p.advance(task, k)), p.stop

    # -- scoring ---------------------------------------------------------------------------------
    def logprobs(self, texts: Sequence[str]) -> np.ndarray:
        """(n, n_classes) log P(label | ticket) by exact scoring (before temperature)."""
        from router.llm.score import Scorer

        texts = list(texts)
        model = self._load()
        if self._scorer is None:
            self._scorer = Scorer(model, self._prompt)
        advance, close = self._progress(len(texts), "scoring tickets")
        try:
            return self._scorer.logprobs(texts, int(self.batch_size), advance)
        finally:
            close()

    def shards(self, texts: Sequence[str], n: int) -> list[list[int]]:
        """The scorer's batches (tickets sorted by token count, [llm] batch_size at a time) dealt out
        round-robin: each process then forms exactly the batches one process forms, so its scores are
        the same, bit for bit (a ticket's padding, hence its rounding, depends on its batch)."""
        if self.decode != "score":
            return super().shards(texts, n)        # generation runs one ticket at a time
        from router.llm.score import length_order

        self._load()
        order = length_order([self._prompt.ticket(t) for t in texts])
        b = int(self.batch_size)
        batches = [order[i:i + b] for i in range(0, len(order), b)]
        return [[j for k in range(r, len(batches), n) for j in batches[k]] for r in range(n)]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, len(self.classes_)))
        if self.decode not in ("score", "generate"):
            raise ValueError(f"decode must be 'score' or 'generate', not {self.decode!r}")
        if self.decode == "generate":
            return self._generated_proba(texts)
        return softmax(self.logprobs(texts), self.temperature)

    def generate(self, texts: Sequence[str], batch_size: int | None = None) -> tuple[list[str], np.ndarray]:
        """(department ids, constrained probability of each) by outlines-constrained greedy decoding."""
        from router.llm.generate import generate_labels

        model = self._load()
        advance, close = self._progress(len(texts), "generating labels")
        try:
            labels, p = generate_labels(model, self._prompt, list(texts), batch_size or 1, advance)
        finally:
            close()
        by_label = dict(zip(self._prompt.labels, self._prompt.classes))
        return [by_label[x] for x in labels], p

    def _generated_proba(self, texts: list[str]) -> np.ndarray:
        """One-label answers as rows: the generated department gets its constrained probability,
        the rest is spread evenly (generation ranks nothing else; use decode 'score' for that)."""
        ids, p = self.generate(texts)
        k = len(self.classes_)
        out = np.tile(((1 - p) / max(k - 1, 1))[:, None], (1, k))
        col = {c: i for i, c in enumerate(self.classes_)}
        out[np.arange(len(ids)), [col[d] for d in ids]] = p
        return out

    # -- learning ----------------------------------------------------------------------------------
    def calibrate(self, texts: Sequence[str], labels: Sequence[str]) -> dict:
        """Fit the temperature on held-out labeled tickets; returns ECE (and NLL) before and after."""
        col = {c: i for i, c in enumerate(self.classes_)}
        keep = [i for i, y in enumerate(labels) if y in col]
        if not keep:
            raise ValueError("calibration needs held-out tickets labeled with known departments")
        logp = self.logprobs([texts[i] for i in keep])
        y = np.array([col[labels[i]] for i in keep])
        before = softmax(logp, self.temperature)
        t = fit_temperature(logp, y)
        after = softmax(logp, t)
        nll = lambda p: float(-np.log(p[np.arange(len(y)), y] + 1e-12).mean())  # noqa: E731
        report = {"n": len(y), "temperature_before": self.temperature, "temperature": t,
                  "ece_before": ece(before, y), "ece_after": ece(after, y),
                  "nll_before": nll(before), "nll_after": nll(after)}
        self.temperature = t
        return report

    def warm_start(self, previous: Classifier) -> bool:
        """[sft] incremental: the next `fit` goes on training `previous`'s adapter, on the tickets it was
        not trained on plus [sft] replay of those it was (its adapter lists them: trained_on.npy). Only
        for the same base model and the same departments (else the answers would differ)."""
        self._warm = None
        s = self.cfg.sft
        why = ("[sft] incremental is off" if not s.incremental else
               "it is not an LLM version" if not isinstance(previous, LLMClassifier) else
               "it has no adapter" if not previous.adapter else
               f"its base is {previous.base}" if str(previous.base) != str(self.base) else
               "its departments differ" if list(previous.classes_) != list(self.classes_) else "")
        self.fit_info = {"warm_start": not why, **({"why_not": why} if why else {})}
        if not why:
            self._warm = Path(previous.adapter)
            self.shots = list(previous.shots)
        return not why

    def _pick(self, texts: list[str], labels: list[str]) -> tuple[list[int], dict]:
        """Positions to train on: all of them from scratch; when warm-starting, the pairs the previous
        adapter was not trained on, then a seeded sample of [sft] replay of those it was."""
        if self._warm is None:
            return list(range(len(texts))), {"warm_start": False, "trained": len(texts)}
        s = self.cfg.sft
        path = self._warm / TRAINED_ON
        seen = set(np.load(path).tolist()) if path.exists() else set()
        keys = pair_keys(texts, labels)
        new = [i for i, k in enumerate(keys) if int(k) not in seen]
        old = [i for i, k in enumerate(keys) if int(k) in seen]
        rng = np.random.default_rng(s.seed)
        replay = sorted(rng.choice(old, min(s.replay, len(old)), replace=False).tolist()) if old else []
        return new + replay, {"warm_start": True, "new": len(new), "replay": len(replay), "older": len(old),
                              "trained": len(new) + len(replay)}

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> "LLMClassifier":
        """LoRA fine-tuning on (ticket, department) pairs via router/llm/sft.py: a new adapter, or the
        warm-started one (`warm_start`) on the new pairs plus a replay sample; [sft] budget_minutes
        bounds the time. The adapter lists every pair it has seen (trained_on.npy)."""
        texts, labels = list(texts), list(labels)
        self.choose_shots(texts, labels)
        pick, info = self._pick(texts, labels)
        warm = self._warm
        if pick:
            self._finetune([texts[i] for i in pick], [labels[i] for i in pick], warm)
        elif warm is not None:                       # nothing new: keep the adapter as it is
            self.adapter = str(warm)
        seen = set(pair_keys(texts, labels).tolist())
        if warm is not None and (warm / TRAINED_ON).exists():
            seen |= set(np.load(warm / TRAINED_ON).tolist())
        if self.adapter and Path(self.adapter) != warm and world().lead:
            np.save(Path(self.adapter) / TRAINED_ON, np.array(sorted(seen), dtype=np.uint64))
        self.fit_info = {**{k: v for k, v in self.fit_info.items() if k == "why_not"}, **info}
        self._warm = None
        return self

    def choose_shots(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        """[prompt] shots > 0: k labeled tickets per department for the prompt's few-shot block
        (a warm start keeps the previous version's, so the prompt it was trained with stays)."""
        k = self._template().shots
        if k > 0 and not (self._warm is not None and self.shots):
            from router.llm.prompt import pick_shots

            seed = self.cfg.train.seed
            self.shots = pick_shots(texts, labels, k, seed, list(self.classes_))
            self._model = self._tokenizer = self._prompt = self._scorer = None

    def _finetune(self, texts: list[str], labels: list[str], warm: Path | None) -> None:
        from router.llm.sft import finetune

        # A folder named by the data, under the state home: a crashed run resumes from its checkpoints.
        cfg = self.cfg
        home = Path(cfg.paths.home)
        key = hashlib.sha1("\x1f".join([str(self.base), str(warm), *texts, "\x1e", *labels]).encode()).hexdigest()[:12]
        self._work = home / "work" / f"llm-{key}"
        self._work.mkdir(parents=True, exist_ok=True)
        # Train on exactly this classifier's prompt and device, whatever the config file says.
        run_cfg = cfg.model_copy(deep=True)
        run_cfg.prompt = self._template()
        run_cfg.llm.device = self.device
        run_cfg.llm.quantize = "auto" if self.quantize is None else self.quantize
        adapter = finetune(str(self.base), list(texts), list(labels), self.catalog, run_cfg, self._work,
                           gguf_file=self.gguf_file or None, classes=list(self.classes_), adapter=warm,
                           shots=self.shots)
        self.adapter = str(adapter)
        self._model = self._tokenizer = self._prompt = self._scorer = None

    # -- persistence -------------------------------------------------------------------------------
    def save(self, folder) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        adapter = None
        if self.adapter:
            src, adapter = Path(self.adapter), "adapter"
            if src.resolve() != (folder / adapter).resolve():
                shutil.copytree(src, folder / adapter, dirs_exist_ok=True)
        depts = [{"id": c, "name": self.catalog.name(c),
                  "duties": self.catalog.by_id[c].duties if c in self.catalog.by_id else ""} for c in self.classes_]
        labels = self._prompt.labels if self._prompt is not None else None
        meta = {"kind": self.kind, "base": str(self.base), "gguf_file": self.gguf_file or None, "adapter": adapter,
                "temperature": self.temperature,
                "classes": list(self.classes_), "labels": labels, "template": self._template().model_dump(),
                "city": self.catalog.city, "departments": depts, "shots": [list(x) for x in self.shots]}
        (folder / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, folder, cfg: Settings, device: str | None = None) -> "LLMClassifier":
        """A saved version. What the model is comes from meta.json; how to run it ([llm] device,
        precision, quantize, batch_size, decode) from the settings `cfg`."""
        folder = Path(folder)
        meta = json.loads((folder / "meta.json").read_text())
        catalog = Catalog([Department(d["id"], d["name"], d["duties"]) for d in meta["departments"]],
                          city=meta.get("city", ""))
        return cls.from_settings(cfg, meta["classes"], catalog, base=meta["base"],
                                 adapter=folder / meta["adapter"] if meta.get("adapter") else None,
                                 gguf_file=meta.get("gguf_file") or "",
                                 template={**cfg.prompt.model_dump(), **(meta.get("template") or {})},
                                 temperature=meta.get("temperature", 1.0), device=device or cfg.llm.device,
                                 shots=meta.get("shots") or [])
