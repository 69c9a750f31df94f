"""Every setting, declared once: type, default and help. Built once at an entry point (the CLI, the
two Streamlit apps, the benchmarks) with `load()` and passed down.

Layers, lowest first: these defaults, a TOML file (./router.toml, $ROUTER_CONFIG or --config), then
environment variables ROUTER_<SECTION>__<KEY>, typed by the field (a password "123456" stays a string):
    ROUTER_STORE__URL=postgresql+psycopg://router@localhost/router
    ROUTER_CLASSIFY__THRESHOLD=0.7
`router config` prints the effective settings (secrets hidden); README's listing is `router config --defaults`.
"""

from __future__ import annotations

import difflib
import json
import os
import textwrap
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, create_model, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, SettingsConfigDict, TomlConfigSettingsSource
from pydantic_settings.sources.utils import parse_env_vars

from router import ROOT

ENV_PREFIX = "ROUTER_"


class Kind(StrEnum):
    baseline = "baseline"
    llm = "llm"
    ensemble = "ensemble"


class Decode(StrEnum):
    score = "score"          # exact probability of every department
    generate = "generate"    # outlines-constrained label


class Strategy(StrEnum):
    """[queue] strategy: router/strategies.py builds each as the benchmarks measured it."""
    least_confidence = "least_confidence"
    margin = "margin"
    entropy = "entropy"
    random = "random"
    balanced = "balanced"    # margin, at most a fair share per predicted department
    diverse = "diverse"      # margin, spread out and density-weighted: near-duplicates last


class Auth(StrEnum):
    """[labeling] auth: how dispatchers sign in (router/users.py)."""
    auto = "auto"
    accounts = "accounts"
    shared_password = "shared_password"
    names = "names"


class Precision(StrEnum):
    """[llm] precision: how the LLM is loaded for serving (router/llm/load.py)."""
    auto = "auto"
    nf4 = "nf4"
    bf16 = "bf16"
    fp8 = "fp8"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Paths(Section):
    home: str = Field(".router", description="state: database, models, logs, locks")
    catalog: str = Field("data/departments.json", description="relative paths resolve against the checkout")


class Store(Section):
    url: str = Field("", description="any SQLAlchemy URL; empty = sqlite:///<home>/router.db")
    busy_timeout_ms: int = Field(5000, ge=0, le=600_000)
    retry_seconds: float = Field(20.0, ge=0, le=3600, description="a write that finds the store locked (or, on "
                                 "PostgreSQL, meets a serialization failure) is tried again with backoff for at "
                                 "most this long in all; then it is refused, nothing recorded")
    write_batch: int = Field(512, ge=1, le=100_000, description="tickets per write transaction of `router import` "
                             "and `router classify` (each whole or not at all): how long one holds SQLite's write lock; "
                             "classify ranks and links a whole batch first, then writes it in parts (an incident's "
                             "tickets in one part)")
    lock_log: str = Field("", description="SQLite: append each write transaction's pid, seconds holding the write "
                          "lock, seconds its first write waited, and that statement to this file "
                          "(bench/concurrency.py); empty: off")


class Classify(Section):
    threshold: float | Literal["auto"] = Field(
        "auto", description="below this confidence a ticket goes to the review queue; \"auto\": each model "
        "version's own, fitted in training (the lowest at which its calibration tickets above it reach "
        "target_accuracy)")
    target_accuracy: float = Field(0.95, gt=0, le=1, description="what \"auto\" aims for: the accuracy of "
                                   "the tickets routed without review")
    top_k: int = Field(3, ge=1, le=100)

    @field_validator("threshold", mode="before")
    @classmethod
    def _threshold(cls, v):
        if isinstance(v, str) and v.strip().lower() == "auto":
            return "auto"
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f'must be a number between 0 and 1 or "auto", not {v!r}') from None
        if not 0 <= x <= 1:
            raise ValueError(f'must be between 0 and 1 or "auto", not {x}')
        return x

    batch_size: int = Field(512, ge=1, le=1_000_000,
                            description="tickets per batch: one model call and one store transaction")
    co_min_p: float = Field(0.2, ge=0, le=1, description="suggest a co-handling department (协办) at this "
                            "probability or more ...")
    co_min_pairs: int = Field(2, ge=1, description="... when it handled tickets together with the routed department "
                              "in at least this many labels")


class Baseline(Section):
    """router/baseline.py: title and text as two TF-IDF blocks of character and word n-grams, one LinearSVC."""
    ngram_min: int = Field(1, ge=1, le=10)
    ngram_max: int = Field(3, ge=1, le=10)
    words: int = Field(2, ge=0, le=4, description="word 1..words-grams in each block besides the characters' "
                       "(Latin, Greek, Cyrillic words and numbers; Chinese is left to the characters); 0: none")
    max_features: int = Field(300000, ge=1, description="per block: the n-grams in most training tickets")
    min_df: int = Field(2, ge=1, description="n-grams in fewer training tickets are dropped")
    sublinear: bool = Field(True, description="tf = 1 + log(count)")
    title_weight: float | Literal["auto"] = Field("auto", description="the title block's weight (each block has "
                                                  "unit norm); \"auto\": 0.3, 1 or 3, whichever the "
                                                  "cross-validation finds most accurate")
    text_weight: float = Field(1.0, ge=0, description="the text block's weight")
    C: float = Field(20.0, gt=0, description="LinearSVC(C = C / 10)")
    class_weight: Literal["balanced"] | None = "balanced"
    calibration_folds: int = Field(3, ge=0, le=20, description="folds of the cross-validation over all training "
                                   "labels that fits the probability scale and the title's weight (0: none)")


class Train(Section):
    seed: int = Field(42, ge=0, le=2**32 - 1)
    test_size: float = Field(0.1, gt=0, lt=1)
    refit: bool = Field(True, description="after the held-out evaluation, the version that is registered (and "
                        "routes) is fitted again on every label (kinds that refit cheaply: the baseline); its "
                        "held-out fit is kept beside it for the gate, which compares held-out fits only")


class LLM(Section):
    base: str = Field("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
                      description="Hugging Face id or local folder of the base model")
    gguf_file: str = Field("", description="a .gguf file inside `base`, for GGUF checkpoints")
    device: str = Field("auto", description="auto (CUDA if present) | cuda | cpu")
    precision: Precision = Field(Precision.auto, description="serving: nf4 | bf16 | fp8 (LoRA merged, FP8 linears) | auto: fp8 on "
                           "GPUs with FP8 (compute capability >= 8.9; faster than NF4, bench/gpu_llm.py), nf4 on "
                           "other GPUs, full precision on CPU")
    quantize: bool | Literal["auto"] = Field("auto", description="older configs: true | false forces the "
                                             "training base (nf4 | bf16) while [sft] base = \"auto\", and with "
                                             "precision = \"auto\" picks nf4/bf16 for serving; auto: no effect")
    batch_size: int = Field(128, ge=1,
                            description="tickets per forward pass (halved on CUDA out-of-memory); peak for the "
                                        "7B with the default prompt: NF4 8.2 GiB, FP8 11.2 GiB (bench/gpu_llm.py)")
    decode: Decode = Field(Decode.score, description="score: exact probability of every department | "
                           "generate: outlines-constrained label")
    temperature: float = Field(1.0, gt=0, le=100, description="softmax temperature over department log-probabilities "
                               "(calibrate fits it)")


class Prompt(Section):
    """The routing prompt (router/llm/prompt.py), rendered through the model's chat template.
    {city}: the catalogue's city; {departments}: one `department` line per department; {ticket}: the ticket.
    A model version keeps the template it was trained with (its meta.json), and that one wins: an edited
    prompt reaches newly trained or registered versions only (`router classify` says when they differ)."""
    model_config = ConfigDict(extra="ignore")   # templates saved by older versions may carry other keys
    system: str = Field("", description="optional system message (R1-distilled models work best without)")
    user: str = Field("你是{city}12345政务服务便民热线的派单员。请阅读市民反映的工单，从下列部门中选出应当承办的一个部门，"
                      "只回答部门编号。\n\n可选部门及其职责：\n{departments}\n\n{examples}工单内容：{ticket}",
                      description="{examples}: the few-shot block (empty when shots = 0; placed after "
                      "{departments} when the template lacks it)")
    department: str = Field("{label}. {name}：{duties}",
                            description="one line per department: {label}, {name}, {id}, {duties}")
    label: str = Field("number", description="what the model answers: \"number\" (1..N in catalogue order: 1-2 "
                       "tokens, the fastest to score), the department's \"name\" (more natural zero-shot, ~2x "
                       "slower to score) or its \"id\"; keep `user` and `department` in step")
    think: str = Field("auto", description="close an empty <think></think> block before the answer: auto | yes | no")
    max_ticket_tokens: int = Field(512, ge=1, description="longer tickets are cut (the head is kept)")
    shots: int = Field(0, ge=0, description="few-shot: this many labeled tickets per department in the shared "
                       "prefix (drawn from the training tickets, or the store's for `router zeroshot`); costs no "
                       "time per ticket, only a longer prefix")
    shot: str = Field("工单：{ticket}\n答：{label}", description="one example: {ticket}, {label}, {name}")
    shots_header: str = "已派单的工单示例：\n{shots}\n\n"
    shot_chars: int = Field(80, ge=1, description="an example's ticket is cut to this many characters")


class SFT(Section):
    """LoRA fine-tuning of the LLM router (router/llm/sft.py), seed-recipe defaults.
    On a machine without CUDA: no quantization, fp32, optim adamw_torch (chosen automatically)."""
    base: Literal["auto", "nf4", "bf16"] = Field(
        "auto", description="the frozen base on CUDA: nf4 (QLoRA, 4-bit weights: least memory) | bf16 (LoRA on the "
        "bf16 base: faster, twice the weights' memory) | auto: bf16 when the GPU's free memory holds the bf16 "
        "weights plus the measured training peak with margin, else nf4 ([llm] quantize = true/false decides "
        "instead when set). CPU: fp32")
    lora_r: int = Field(64, ge=1)
    lora_alpha: int = Field(64, ge=1)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    max_seq: int = Field(896, ge=16, description="tokens per example (prompt + label); longer prompts are cut")
    batch_size: int = Field(4, ge=1,
                            description="examples per device step (micro-batch); 4 x 4 runs the 7B step 2.1x "
                                        "faster than 2 x 8 within 8 GiB (NF4, bench/gpu_train.py)")
    grad_accum: int = Field(4, ge=1, description="steps per optimizer update (effective batch 16)")
    learning_rate: float = Field(5e-5, gt=0, le=1)
    scheduler: str = Field("cosine", description="lr_scheduler_type")
    warmup_ratio: float = Field(0.03, ge=0, le=1)
    optim: str = Field("paged_adamw_8bit", description="any transformers optim name; CUDA-only ones fall back on CPU")
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, ge=-1, description="> 0 overrides epochs")
    gradient_checkpointing: bool | Literal["selective"] = Field(
        True, description="true | false | \"selective\" (trl: keep matmul outputs, recompute the rest)")
    bf16: bool = Field(True, description="on CUDA (ignored on CPU)")
    save_steps: int = Field(200, ge=1, description="checkpoint every N optimizer steps (resume after a crash)")
    save_total_limit: int = Field(2, ge=1)
    logging_steps: int = Field(10, ge=1)
    seed: int = Field(42, ge=0, le=2**32 - 1)
    incremental: bool = Field(False, description="retraining warm-starts from the current LLM version's adapter "
                              "(same base and departments) and trains on the labels it has not seen plus `replay` "
                              "of the ones it has")
    replay: int = Field(2000, ge=0, description="incremental: older labeled tickets replayed per run (a random sample)")
    budget_minutes: float = Field(0, ge=0, description="> 0: training stops after this many minutes and keeps the "
                                  "adapter as it is then (a night's slot); 0 = no limit")
    share_prefix: bool = Field(True, description="encode the shared instruction prefix once per optimizer step "
                               "(no gradient through it); max_seq then bounds ticket + answer only")


class Ensemble(Section):
    """The ensemble kind (router/ensemble.py): a weighted mean of its members' probabilities, each member
    trained as its own kind on the same tickets and tempered on the calibration slice."""
    members: list[Literal["baseline", "llm"]] = Field(["llm", "baseline"], description="the kinds it combines")
    weighting: Literal["mean", "fit"] = Field("mean", description="mean: equal weights; fit: the lowest log-loss on "
                                              "the calibration slice, on a grid (README: the mean did better in 3 "
                                              "of 4 measured comparisons)")
    weights: list[Annotated[float, Field(ge=0)]] = Field([], description="one per member, fixed (instead of "
                                                         "`weighting`)")
    grid_steps: int = Field(20, ge=1, le=1000, description="the weight grid's resolution: 1 / grid_steps")


class Gate(Section):
    """Promotion gate (training/gate.py): candidate and current model are scored on the same held-out set."""
    max_macro_f1_drop: float = Field(0.005, ge=-1, le=1,
                                     description="refuse when macro-F1 falls by more than this (< 0: demand a gain)")
    max_department_f1_drop: float = Field(0.05, ge=-1, le=1,
                                          description="... or any department with enough support loses "
                                                      "more F1 than this")
    min_support: int = Field(10, ge=1, description="held-out tickets a department needs for its own check")
    confidence: float = Field(0.9, ge=0, lt=1,
                              description="refuse on macro-F1 only when even this quantile of a paired "
                                          "bootstrap of the change is a drop beyond max_macro_f1_drop (0 = plain comparison)")
    max_nofit_drop: float = Field(0.05, ge=-1, le=1, description="... or \"no department fits\" loses more recall or "
                                  "precision than this")
    nofit_min_support: int = Field(10, ge=1, description="held-out no-fit tickets needed for that check")


class Emergency(Section):
    """Emergencies and the legal channel (router/emergency.py): the rule layers always route; the model's
    own answer (learnt from labels emergency-110 ..., legal-channel) counts only at these probabilities."""
    model_min: float = Field(0.5, ge=0, le=1, description="the model's emergency line counts when its "
                             "probability reaches this; below it the ticket goes to its best other department")
    legal_min: float = Field(0.5, ge=0, le=1, description="the model's legal-channel answer counts when its "
                             "probability reaches this (the rule layer's always does); below it the ticket goes "
                             "to its best other department")


class Rules(Section):
    """The dispatch catalogue's rules (router/rules.py, `router rules add`)."""
    max_share: float = Field(0.2, gt=0, le=1, description="refuse a rule matching more than this share of the "
                             "newest 2,000 tickets (a rule matching everything)")


class Incidents(Section):
    """Incidents (并单, router/incidents.py): repeated appeals about one matter grouped at classify time."""
    enabled: bool = Field(True, description="group near-duplicate tickets naming the same place")
    window_days: float = Field(2.0, gt=0, description="an earlier ticket counts when received at most this many "
                               "days before")
    similarity: float = Field(0.5, gt=0, le=1, description="cosine of IDF-weighted character 1-3-grams from which "
                              "two tickets read alike (bench/incidents.py measures it)")
    alert_size: int = Field(10, ge=2, description="dashboards: an incident with this many tickets within "
                            "alert_hours is an early warning (风险性苗头性诉求预警)")
    alert_hours: float = Field(4.0, gt=0, description="... the span that counts")


class Nofit(Section):
    """"No department fits" (router/nofit.py): a ticket whose out-of-scope score reaches the threshold,
    or whose top class is the model's `none` class (learnt from dispatchers' N labels and imported
    `"no_fit": kind` / label "none" / "无合适部门"), gets department "none" and goes to the review
    queue with reason no_fit. Score in [0, 1]; 0.5 = "none" as likely as the best department."""
    enabled: bool = Field(True, description="false: always route to the best department, never flag")
    threshold: float = Field(0.0, ge=0, le=1,
                             description="> 0: flag at this score, over the threshold fitted with the model")
    target_recall: float = Field(0.85, gt=0, le=1,
                                 description="training fits each model's threshold on its calibration "
                                             "slice to flag this share of the no-fit tickets there")
    min_examples: int = Field(5, ge=1,
                              description="fewer no-fit tickets in that slice: no fitted threshold, only the "
                                          "`none` class flags (and nothing before no-fit labels exist)")


class Retrain(Section):
    """Nightly retrain (`router retrain`, training/nightly.py); also used by `router train`."""
    kind: Kind = Field(Kind.baseline, description="model kind trained when --kind is not given")
    min_new_labels: int = Field(50, ge=0,
                                description="fewer new labels since the last version of that kind: do nothing")
    old_sample: int = Field(0, ge=0, description="older labeled tickets replayed per run; 0 = all of them")
    recent_weight: float = Field(2, gt=0, le=100,
                                 description="new labels from weighted_sources count this many times")
    weighted_sources: list[str] = ["correction", "audit", "dispute"]
    known_wrong_weight: int = Field(3, ge=1, le=100,
                                    description="tickets with a known wrong department (a department's return "
                                                "that a lead upheld) count this many times: hard examples")
    calibration_size: float = Field(0.1, ge=0, lt=1, description="share of the training tickets held back to fit the "
                                    "temperature")
    newest_corrections: int = Field(200, ge=0, description="the newest held-out corrections, reported on their own")


class Dashboards(Section):
    port: int = Field(8501, ge=1, le=65535, description="`router dashboard` serves on this port")
    address: str = Field("localhost", description="and binds this address (\"0.0.0.0\" to serve the network)")
    cache_ttl_s: int = Field(60, ge=0, le=86_400,
                             description="seconds a page reuses a query result before asking the store again")


class Queue(Section):
    """Review queue (router/queue.py), filled by `router classify` with tickets below [classify] threshold."""
    strategy: Strategy = Field(Strategy.diverse, description="order: least_confidence | margin | entropy | "
                               "random | balanced (margin, a fair share per predicted department) | diverse "
                               "(margin, spread out: near-duplicates last)")
    daily_budget: int = Field(0, ge=0, description="at most this many low-confidence tickets a day (the best by "
                              "priority); 0 = no limit")
    audit_rate: float = Field(0.02, ge=0, le=1, description="share of confident tickets queued as random audits "
                              "(unbiased accuracy)")
    duplicate_similarity: float = Field(0.8, ge=0, le=1,
                                        description="IDF-weighted char n-gram cosine (as incident linking's) "
                                                    "at which two tickets count as near-duplicates")
    duplicate_discount: float = Field(0.2, ge=0, le=1,
                                      description="a near-duplicate's priority is multiplied by this")
    duplicate_window: int = Field(2000, ge=0, description="compared against this many newest waiting tickets")
    timezone: str = Field("Asia/Shanghai", description="where \"today\" starts, for the budget and the day's counts")
    seed: int | None = Field(None, ge=0, le=2**32 - 1,
                             description="audit sampling seed (unset = fresh randomness; simulations fix it)")
    window: int = Field(200, ge=0, description="the strategy orders this many waiting tickets; the rest by score")
    rerank: bool = Field(True, description="re-score waiting tickets routed by an older model")


class Labeling(Section):
    """The labeling app (`router label`, labeling/app.py)."""
    port: int = Field(8502, ge=1, le=65535, description="`router label` serves on this port")
    address: str = Field("localhost", description="and binds this address (\"0.0.0.0\" to serve the network)")
    claim_minutes: float = Field(10, ge=1, le=1440,
                                 description="a shown ticket is reserved for its dispatcher this long")
    auth: Auth = Field(Auth.auto, description="sign-in: accounts (each dispatcher's own password, `router users add`) | "
                      "shared_password (any name + the password below) | names (any name, no password: one "
                      "trusted desk only) | auto: accounts once any exist, else shared_password when a password "
                      "is set, else names")
    password: SecretStr = Field(SecretStr(""), description="the shared password; set it with env "
                                "ROUTER_LABELING__PASSWORD, not in a file. That variable set but empty is an "
                                "error (it never turns a password off)")


class Settings(BaseModel):
    """Every setting. `Settings()` is the declared defaults; `load()` adds the file and the environment."""
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    paths: Paths = Field(default_factory=Paths)
    store: Store = Field(default_factory=Store)
    classify: Classify = Field(default_factory=Classify)
    baseline: Baseline = Field(default_factory=Baseline)
    train: Train = Field(default_factory=Train)
    llm: LLM = Field(default_factory=LLM)
    prompt: Prompt = Field(default_factory=Prompt)
    sft: SFT = Field(default_factory=SFT)
    ensemble: Ensemble = Field(default_factory=Ensemble)
    gate: Gate = Field(default_factory=Gate)
    nofit: Nofit = Field(default_factory=Nofit)
    emergency: Emergency = Field(default_factory=Emergency)
    rules: Rules = Field(default_factory=Rules)
    incidents: Incidents = Field(default_factory=Incidents)
    retrain: Retrain = Field(default_factory=Retrain)
    dashboards: Dashboards = Field(default_factory=Dashboards)
    queue: Queue = Field(default_factory=Queue)
    labeling: Labeling = Field(default_factory=Labeling)


class _Env(EnvSettingsSource):
    """The environment source, reading `env` (os.environ unless given)."""

    def __init__(self, settings_cls, env: Mapping[str, str]):
        self._env = env
        super().__init__(settings_cls)

    def _load_env_vars(self):
        return parse_env_vars(self._env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


def _closest(name: str, names) -> str:
    """ (did you mean X?)" for the valid name closest to `name`, or ""."""
    near = difflib.get_close_matches(str(name).lower(), list(names), n=1, cutoff=0.6)
    return f" (did you mean {near[0]}?)" if near else ""


def _brief(e: ValidationError) -> str:
    def one(x) -> str:
        where, key = x["loc"][0], ".".join(map(str, x["loc"][1:]))
        if x["type"] == "extra_forbidden" and len(x["loc"]) == 2 and where in Settings.model_fields:
            fields = Settings.model_fields[where].annotation.model_fields
            return f"[{where}] unknown key {key!r}{_closest(key, fields)}"
        return f"[{where}] {key}: {x['msg']}"
    return "; ".join(one(x) for x in e.errors())


def _unknown_sections(path: str | Path | None, env: Mapping[str, str]) -> str | None:
    """An unknown section in the TOML file or in a ROUTER_<SECTION>__<KEY> variable, with the closest name."""
    sections = Settings.model_fields
    if path:
        with open(path, "rb") as f:
            data = tomllib.load(f)
        for k, v in data.items():
            if not isinstance(v, dict):
                return f"config file {path}: {k!r} is outside any section (put it under one, e.g. [classify])"
            if k not in sections:
                return f"config file {path}: unknown section [{k}]" + _closest(k, [f"[{s}]" for s in sections])
    for var in env:
        name = var.upper()
        if name.startswith(ENV_PREFIX) and "__" in name:
            section = name[len(ENV_PREFIX):].split("__", 1)[0].lower()
            if section not in sections:
                return f"environment variable {var}: unknown section [{section}]" + _closest(
                    section, [f"[{s}]" for s in sections])
    return None


def _env_name(env: Mapping[str, str], name: str) -> str | None:
    return next((k for k in env if k.upper() == name), None)


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """The settings: defaults < TOML file (path, $ROUTER_CONFIG or ./router.toml) < ROUTER_* environment.
    Strict: an unknown section or key, a value out of its range, a config path that is not a file, or a
    home that is not a folder is a ValueError naming it."""
    env = os.environ if env is None else env
    given = "--config" if path else "ROUTER_CONFIG" if env.get("ROUTER_CONFIG") else None
    path = path or env.get("ROUTER_CONFIG") or ("router.toml" if Path("router.toml").is_file() else None)
    if path and not Path(path).exists():
        raise FileNotFoundError(f"config file {path}{f' ({given})' if given else ''} does not exist")
    if path and not Path(path).is_file():
        raise ValueError(f"config file {path}{f' ({given})' if given else ''} is a folder, not a TOML file")

    class Sources(BaseSettings):
        model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="ignore")

        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, **_):
            toml = [TomlConfigSettingsSource(settings_cls, toml_file=Path(path))] if path else []
            return init_settings, _Env(settings_cls, env), *toml

    try:
        if problem := _unknown_sections(path, env):
            raise ValueError(problem)
        loaded = create_model("Loaded", __base__=Sources, **{k: (f.annotation, f) for k, f in
                                                             Settings.model_fields.items()})
        cfg = Settings.model_validate(loaded().model_dump())
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"config file {path}: {e}") from None
    except ValidationError as e:
        raise ValueError(f"config{f' file {path}' if path else ''}: {_brief(e)}") from None
    h = Path(cfg.paths.home)
    if h.exists() and not h.is_dir():
        var = _env_name(env, "ROUTER_PATHS__HOME")
        raise ValueError(f"[paths] home{f' (set by {var})' if var else ''} = {h} is a file, not a folder")
    return cfg


def _range(f) -> str:
    """A numeric field's valid range from its Field(ge/gt/le/lt) bounds, e.g. ">= 1, <= 1440"."""
    ops = {"ge": ">=", "gt": ">", "le": "<=", "lt": "<"}
    return ", ".join(f"{op} {getattr(m, k)}" for m in f.metadata for k, op in ops.items() if hasattr(m, k))


def dump(cfg: Settings, comments: bool = True) -> str:
    """The settings as TOML, with each field's help as a comment; secrets show as "***" when set."""
    out = []
    for name, field in Settings.model_fields.items():
        section = getattr(cfg, name)
        out.append(f"\n[{name}]")
        if comments and type(section).__doc__:
            out += [f"# {line.strip()}" for line in type(section).__doc__.strip().splitlines()]
        for key, f in type(section).model_fields.items():
            v = getattr(section, key)
            v = ("***" if v.get_secret_value() else "") if isinstance(v, SecretStr) else v
            line = f"{key} = {json.dumps(v, ensure_ascii=False)}" if v is not None else f"# {key} = (unset)"
            bounds = _range(f)
            desc = f"{f.description} ({bounds})" if f.description and bounds else f.description or bounds
            if not (comments and desc):
                out.append(line)
            elif len(line) < 40 and len(desc) < 70:
                out.append(f"{line:<40}# {desc}")
            else:
                out += [f"# {c}" for c in textwrap.wrap(desc, 108)] + [line]
    return "\n".join(out).lstrip() + "\n"


def resolve(p: str | Path) -> Path:
    """Relative paths in config name files in the checkout (data/) or under the working directory."""
    p = Path(p)
    if p.is_absolute() or p.exists():
        return p
    return ROOT / p if (ROOT / p).exists() else p


def home(cfg: Settings) -> Path:
    h = Path(cfg.paths.home)
    try:
        h.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"[paths] home = {h}: cannot create the folder ({e.strerror or e})") from None
    return h


def sqlite_file(cfg: Settings) -> Path | None:
    """The store's SQLite file (None for a server database or an in-memory one); creates nothing."""
    if not cfg.store.url:
        return Path(cfg.paths.home) / "router.db"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(cfg.store.url)
    except ArgumentError:
        return None
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:") \
        else None


def store_url(cfg: Settings) -> str:
    return cfg.store.url or f"sqlite:///{home(cfg) / 'router.db'}"
