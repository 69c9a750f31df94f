"""LoRA fine-tuning of the LLM router with trl's SFTTrainer (QLoRA on a 4-bit base, or a bf16 base).

    adapter = finetune(model_id, texts, labels, catalog, cfg, out_dir)   # -> out_dir/adapter

Every example is the routing prompt of router/llm/prompt.py (the very token ids inference
uses) followed by the department's answer; the loss covers only the answer tokens
(a pre-tokenized prompt-completion dataset, `completion_only_loss`). On CUDA the frozen base is
4-bit NF4 or bf16 (`[sft] base`, `pick_base`: auto takes bf16 when the GPU's free memory holds it
and the training peak) and trained in bf16 with a paged 8-bit AdamW; on CPU it stays unquantized
in fp32 with `adamw_torch`. trl computes the loss with its fused
LM head: logits only at the answer positions, never the (batch x length x vocabulary) tensor,
and without the fp32 up-casting of `prepare_model_for_kbit_training`.

Shared instruction prefix (share_prefix = true, the default): every routing prompt starts with
the same instruction and department list (about 5,000 tokens with the 70-department catalogue
and a Qwen tokenizer), and only the ticket (~100 tokens) and the answer differ. The prefix's
keys/values are computed once per optimizer step (no gradient through them, with the current
adapter) and shared by every sequence of the step; sequences then hold only ticket + answer, and
max_seq bounds that part. With share_prefix = false every example carries the whole prompt.

Checkpoints go to out_dir/checkpoints every `save_steps` optimizer steps; a run that was
interrupted continues from the newest one (resume=True).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Sequence

import torch
from transformers import TrainerCallback

from router.config import SFT, Settings
from router.parallel import accumulation, world

CUDA_ONLY_OPTIMS = ("8bit", "paged", "bnb")
GIB = 2 ** 30
# What a training step holds beyond the frozen weights, in bytes per micro-batch token per (layer x hidden
# unit), with and without activation checkpointing: peak minus weights of the bf16 base on the 7B shape, batch
# 2 x 896, LoRA r=64 (bench/gpu_train.py ours_bf16 / ours_bf16_no_ckpt, H100): 1.9 and 14.5 GiB.
STEP_BYTES = {True: 11.2, False: 86.5}
MARGIN = (1.2, 2.0)   # auto takes bf16 when free memory >= need x 1.2 + 2 GiB
log = logging.getLogger("router.llm.sft")


def settings(cfg: Settings, **overrides) -> SFT:
    """The [sft] settings, then keyword overrides (unknown keys are an error)."""
    return SFT(**{**cfg.sft.model_dump(), **{k: v for k, v in overrides.items() if v is not None}})


def examples(prompt, texts: Sequence[str], labels: Sequence[str], max_seq: int, share_prefix: bool = False) -> dict:
    """Pre-tokenized prompt-completion columns: input_ids and completion_mask (1 on the answer).
    With share_prefix the instruction prefix is left out (the trainer supplies its keys/values).

    Too-long examples lose the end of the ticket, never the instruction or the answer."""
    ids, masks = [], []
    head = [] if share_prefix else list(prompt.prefix)
    fixed = len(head) + len(prompt.suffix)
    for text, label in zip(texts, labels):
        answer = prompt.answer(label)
        room = max_seq - fixed - len(answer)
        if room < 1:
            raise ValueError(f"[sft] max_seq = {max_seq} is too short for the prompt: the instruction alone is "
                             f"{fixed} tokens and the answer {len(answer)}; raise [sft] max_seq to at least "
                             f"{fixed + len(answer) + 64}")
        ticket = prompt.ticket(text)
        body = ticket[: len(ticket) - len(prompt.suffix)][:room] + prompt.suffix
        p = head + body
        ids.append(p + answer)
        masks.append([0] * len(p) + [1] * len(answer))
    return {"input_ids": ids, "completion_mask": masks}


def pick_base(s: SFT, quantize, device: str, shape: tuple[int, int, int] | None = None,
              free: int | None = None) -> tuple[str, str]:
    """The frozen base's format, nf4 | bf16 | fp32, and why: CPU -> fp32; `[sft] base` when not auto;
    else `[llm] quantize` when true/false (older configs); else bf16 when `free` GPU bytes hold the bf16
    weights + the training step (STEP_BYTES x micro-batch tokens x layers x hidden) with MARGIN.
    shape: (parameters, layers, hidden size) of the model."""
    if not device.startswith("cuda"):
        return "fp32", "no GPU: the base stays in full precision"
    if s.base != "auto":
        return s.base, f"[sft] base = {s.base}"
    if isinstance(quantize, bool):
        return ("nf4" if quantize else "bf16"), f"[llm] quantize = {str(quantize).lower()} (and [sft] base = auto)"
    if shape is None or free is None:
        return "nf4", "[sft] base = auto, and the model's size is unknown"
    params, layers, hidden = shape
    weights = 2 * params
    step = STEP_BYTES[bool(s.gradient_checkpointing)] * s.batch_size * s.max_seq * layers * hidden
    need = (weights + step) * MARGIN[0] + MARGIN[1] * GIB
    fits = free >= need
    return ("bf16" if fits else "nf4"), (
        f"[sft] base = auto: {free / GIB:.1f} GiB free on {device} {'holds' if fits else 'does not hold'} the bf16 "
        f"weights ({weights / GIB:.1f} GiB) + the training step (~{step / GIB:.1f} GiB) with margin "
        f"({need / GIB:.1f} GiB)")


def model_shape(model_id: str, gguf_file: str | None = None) -> tuple[int, int, int] | None:
    """(parameters, layers, hidden size) from the model's config, without loading weights; None if unreadable."""
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        conf = AutoConfig.from_pretrained(model_id, **({"gguf_file": gguf_file} if gguf_file else {}))
        with init_empty_weights():
            model = AutoModelForCausalLM.from_config(conf)
    except Exception as e:   # any unreadable config: auto falls back to nf4, and says so
        log.warning("cannot read the size of %s: %s", model_id, str(e).splitlines()[0] if str(e) else e)
        return None
    text = conf.get_text_config()
    model.tie_weights()   # a tied head is one tensor, as after loading
    return sum(p.numel() for p in model.parameters()), text.num_hidden_layers, text.hidden_size


def training_base(model_id: str, gguf_file: str | None, s: SFT, llm, device: str) -> tuple[str, str]:
    """pick_base for this model on this device (its size from the config, the GPU's free memory now)."""
    if not device.startswith("cuda") or s.base != "auto" or isinstance(llm.quantize, bool):
        return pick_base(s, llm.quantize, device)
    return pick_base(s, llm.quantize, device, model_shape(model_id, gguf_file), torch.cuda.mem_get_info(device)[0])


class Budget(TrainerCallback):
    """A TrainerCallback that stops training once `minutes` have passed since training began
    (`clock`: seconds, injectable); the adapter is then saved as it is."""

    def __init__(self, minutes: float, clock=None):
        import time

        self.minutes, self.clock, self.start, self.stopped_at = minutes, clock or time.monotonic, None, None

    def on_train_begin(self, args, state, control, **kw):
        self.start = self.clock()

    def on_step_end(self, args, state, control, **kw):
        if self.minutes > 0 and self.clock() - self.start >= self.minutes * 60:
            control.should_training_stop = True
            self.stopped_at = state.global_step
            log.info("[sft] budget_minutes = %s reached after %d optimizer steps: stopping", self.minutes,
                     state.global_step)


def last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def lora_config(s: dict):
    from peft import LoraConfig

    return LoraConfig(r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=s.lora_dropout,
                      target_modules=list(s.target_modules), bias="none", task_type="CAUSAL_LM")


def sft_config(s: dict, out_dir: Path, cuda: bool, n_examples: int | None = None, progress: bool = True):
    """SFTConfig from [sft]; CUDA-only choices (bf16, bitsandbytes optimizers) fall back on CPU."""
    from trl import SFTConfig

    optim = s.optim
    if not cuda and any(k in optim for k in CUDA_ONLY_OPTIMS):
        optim = "adamw_torch"
    warmup = 0
    if n_examples:
        steps = s.max_steps if s.max_steps > 0 else math.ceil(
            math.ceil(n_examples / (s.batch_size * world().size)) / s.grad_accum * s.epochs)
        warmup = math.ceil(steps * s.warmup_ratio)
    return SFTConfig(
        output_dir=str(out_dir / "checkpoints"), per_device_train_batch_size=s.batch_size,
        gradient_accumulation_steps=s.grad_accum, learning_rate=s.learning_rate,
        lr_scheduler_type=s.scheduler, warmup_steps=warmup, optim=optim,
        num_train_epochs=s.epochs, max_steps=s.max_steps, bf16=bool(cuda and s.bf16), fp16=False,
        gradient_checkpointing=bool(s.gradient_checkpointing),
        gradient_checkpointing_kwargs=({"use_reentrant": False, "selective": True}
                                       if s.gradient_checkpointing == "selective" else
                                       {"use_reentrant": False} if s.gradient_checkpointing else None),
        max_length=s.max_seq, completion_only_loss=True, packing=False,
        save_strategy="steps", save_steps=s.save_steps, save_total_limit=s.save_total_limit,
        logging_steps=s.logging_steps, logging_first_step=True, report_to="none", seed=s.seed,
        disable_tqdm=not progress, dataloader_num_workers=0, use_cpu=not cuda,
        remove_unused_columns=True, **ddp(cuda))


def ddp(cuda: bool) -> dict:
    """DDP settings under a launcher (router/parallel.py): gloo on CPU; every LoRA weight is used in
    every forward pass, so DDP need not search for unused ones."""
    if world().size == 1:
        return {}
    return {"ddp_backend": None if cuda else "gloo", "ddp_find_unused_parameters": False}


def trainer(model, tokenizer, dataset: dict, s: dict, out_dir: Path, cuda: bool, callbacks=(), progress=True,
            prefix: Sequence[int] | None = None, adapter: str | Path | None = None):
    """The SFTTrainer over a pre-tokenized {input_ids, completion_mask} dataset, LoRA from [sft], or
    the trainable `adapter` (a warm start); with `prefix` (token ids) the sequences are continuations
    of that shared prefix."""
    from datasets import Dataset
    from trl import SFTTrainer

    ds = Dataset.from_dict(dataset)
    peft = lora_config(s)
    if adapter is not None:
        from peft import PeftModel

        model, peft = PeftModel.from_pretrained(model, str(adapter), is_trainable=True), None
        if s.gradient_checkpointing:
            model.enable_input_require_grads()
    kw = dict(model=model, args=sft_config(s, out_dir, cuda, len(ds), progress), train_dataset=ds,
              processing_class=tokenizer, peft_config=peft, callbacks=list(callbacks))
    if not prefix:
        return SFTTrainer(**kw)
    return _prefix_trainer_class()(prefix=list(prefix), **kw)


def shared_prefix_cache(kv, batch: int):
    """A cache holding the prefix's keys/values for `batch` sequences whose `update` returns
    prefix + new states WITHOUT storing them: a layer re-run by activation checkpointing sees
    the same cache, so checkpointing stays exact."""
    from transformers import DynamicCache

    class SharedPrefix(DynamicCache):
        def update(self, key_states, value_states, layer_idx, *args, **kwargs):
            layer = self.layers[layer_idx]
            return torch.cat([layer.keys, key_states], -2), torch.cat([layer.values, value_states], -2)

    cache = SharedPrefix()
    for i, (k, v) in enumerate(kv):
        DynamicCache.update(cache, k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1), i)
    return cache


def prefix_kv(model, prefix: Sequence[int], device) -> list:
    """Keys/values of `prefix` per layer, computed without gradient in eval mode (no dropout)."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(input_ids=torch.tensor([list(prefix)], device=device), use_cache=True, logits_to_keep=1)
    finally:
        model.train(was)
    return [(layer.keys, layer.values) for layer in out.past_key_values.layers]


def shared_forward(model, kv, inputs: dict, prefix_len: int):
    """The fused-head forward of a batch of continuations of the shared prefix."""
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    b, n = ids.shape
    full_mask = torch.cat([torch.ones(b, prefix_len, dtype=mask.dtype, device=mask.device), mask], 1)
    pos = torch.arange(prefix_len, prefix_len + n, device=ids.device).unsqueeze(0).expand(b, -1)
    return model(input_ids=ids, attention_mask=full_mask, position_ids=pos,
                 past_key_values=shared_prefix_cache(kv, b), labels=inputs["labels"], fused_lm_head=True,
                 use_cache=False)


def _prefix_trainer_class():
    from trl import SFTTrainer

    class PrefixSFTTrainer(SFTTrainer):
        """SFTTrainer whose sequences continue one shared prefix, encoded once per optimizer step."""

        def __init__(self, *args, prefix: list[int], **kwargs):
            super().__init__(*args, **kwargs)
            self.prefix = prefix
            self._kv, self._kv_step = None, None
            # the cache never changes inside a layer, so a checkpointed layer may see it
            for m in self.model.modules():
                if hasattr(m, "_can_checkpoint_with_cache"):
                    m._can_checkpoint_with_cache = True

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if self._kv is None or self._kv_step != self.state.global_step:
                self._kv = prefix_kv(model, self.prefix, inputs["input_ids"].device)
                self._kv_step = self.state.global_step
            out = shared_forward(model, self._kv, inputs, len(self.prefix))
            n = out.label_mask.sum() if num_items_in_batch is None else num_items_in_batch
            loss = -out.log_probs.sum() / torch.as_tensor(n).clamp(min=1)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            mode = "train" if model.training else "eval"
            valid = out.label_mask.sum()
            if valid > 0:
                self._metrics[mode]["mean_token_accuracy"].append((out.is_top1.sum() / valid).item())
            return (loss, out) if return_outputs else loss

    return PrefixSFTTrainer


def without_cudnn_attention():
    """Attention without the cuDNN backend while training: its backward (torch 2.13, H100/H200)
    returns NaN query gradients when a mask is given and the key length is 64 past a multiple of 128
    (pytorch/pytorch#196678, hit through Qwen2.5's large-activation heads), which turned every LoRA
    weight NaN on the Chinese month. Flash / memory-efficient / math attention are exact; scoring
    (router/llm/score.py, forward only) keeps its kernels."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH])


def check_finite(model, step: int) -> None:
    """Raise when a trainable weight is not finite after the fit (the loss or a gradient was), rather
    than save an adapter whose every score would be NaN."""
    bad = [n for n, w in model.named_parameters() if w.requires_grad and not torch.isfinite(w).all()]
    if bad:
        raise ValueError(f"the LoRA fit diverged: {len(bad)} adapter weights are not finite after step {step} "
                         f"(first: {bad[0]}): a loss or gradient was NaN or infinite; no adapter saved")


def finetune(model_id: str, texts: Sequence[str], labels: Sequence[str], catalog, cfg, out_dir,
             resume: bool = True, *, gguf_file: str | None = None, classes: Sequence[str] | None = None,
             callbacks=(), progress: bool = True, adapter: str | Path | None = None, shots=(), **overrides) -> Path:
    """Fine-tune a LoRA adapter on (ticket text, department id) pairs; returns out_dir/adapter.

    model_id   base model (Hugging Face id or folder), loaded by router.llm.load.load_model
    catalog    router.catalog.Catalog: the departments the prompt lists
    cfg        the config (its [sft], [prompt] and [llm] sections are used)
    out_dir    checkpoints in out_dir/checkpoints, the adapter (+ tokenizer) in out_dir/adapter
    resume     continue from the newest checkpoint in out_dir/checkpoints, if there is one
    classes    department ids the prompt offers (default: the catalogue's active ones)
    adapter    warm start: go on training this adapter instead of a new LoRA
    shots      (text, department) examples of the prompt's few-shot block
    overrides  any [sft] key, e.g. max_steps=10
    """
    from router.llm.load import load_model, pick_device
    from router.llm.prompt import build_prompt

    texts, labels = list(texts), list(labels)
    if len(texts) != len(labels) or not texts:
        raise ValueError(f"need as many labels as texts, and at least one: {len(texts)} texts, {len(labels)} labels")
    s = settings(cfg, **overrides)
    if world().size > 1:  # DDP (router/parallel.py): each process accumulates its share of the batch
        s = s.model_copy(update={"grad_accum": accumulation(s.grad_accum, world().size)})
    llm = cfg.llm
    device = pick_device(llm.device)
    cuda = device.startswith("cuda")
    gguf_file = gguf_file or llm.gguf_file or None
    base, why = training_base(model_id, gguf_file, s, llm, device)
    log.info("training base: %s (%s)", base, why)
    model, tokenizer = load_model(model_id, gguf_file=gguf_file, device=device, quantize=base == "nf4",
                                  dtype=torch.bfloat16 if cuda else torch.float32)
    prompt = build_prompt(tokenizer, catalog, cfg.prompt, classes, shots)
    unknown = sorted(set(labels) - set(prompt.classes))
    if unknown:
        raise ValueError(f"labels not among the prompt's departments: {unknown[:5]}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "base.json").write_text(json.dumps({"base": base, "why": why}, ensure_ascii=False))
    share = bool(s.share_prefix)
    if s.budget_minutes > 0 and not any(isinstance(c, Budget) for c in callbacks):
        callbacks = [*callbacks, Budget(s.budget_minutes)]
    tr = trainer(model, tokenizer, examples(prompt, texts, labels, s.max_seq, share), s, out_dir, cuda,
                 callbacks, progress, prefix=prompt.prefix if share else None, adapter=adapter)
    ckpt = last_checkpoint(out_dir / "checkpoints") if resume else None
    with without_cudnn_attention():
        tr.train(resume_from_checkpoint=ckpt)
    check_finite(tr.model, tr.state.global_step)
    adapter = out_dir / "adapter"
    if tr.is_world_process_zero():  # under DDP every process holds the same weights; rank 0 writes them
        tr.model.save_pretrained(str(adapter))
        tokenizer.save_pretrained(str(adapter))
    return adapter
