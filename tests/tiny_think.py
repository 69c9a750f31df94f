"""A tiny randomly initialised Qwen2 with a tokenizer trained on the spot: for tests and dry runs.

    folder = tiny_model(tmp / "tiny", texts)      # texts: catalogue + some tickets, for the BPE
    model, tok = load_model(str(folder), device="cpu")

Its chat template opens a think block for the answer, like DeepSeek-R1-distilled models, so the
prompt code that closes it is exercised. Random weights: useful for mechanics, never for accuracy.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n{% endif %}"
)
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
# The exact shape of DeepSeek-R1-Distill-Qwen-7B (a Qwen2Config), for speed and memory benchmarks
# on random weights.
QWEN_7B_SHAPE = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
                     num_attention_heads=28, num_key_value_heads=4, rope_theta=10000, rms_norm_eps=1e-6,
                     tie_word_embeddings=False)


def tiny_tokenizer(texts: Iterable[str], vocab_size: int = 2000):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   chat_template=CHAT_TEMPLATE)


def tiny_model(folder: str | Path, texts: Iterable[str], vocab_size: int = 2000, hidden: int = 64,
               layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny Qwen2 (random weights, fixed seed) and its tokenizer into `folder`."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    tok = tiny_tokenizer(texts, vocab_size)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=8192, tie_word_embeddings=False,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(cfg)
    # Random weights give near-uniform outputs; larger ones make the scores differ visibly.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.2)
    model.generation_config.eos_token_id = tok.eos_token_id
    model.generation_config.pad_token_id = tok.pad_token_id
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def tiny_config(base: str | Path, sft: str = "") -> str:
    """router.toml tables that train `base` (a tiny_model) 2 LoRA steps on the CPU with a short prompt;
    `sft`: more [sft] lines (that table comes last)."""
    return (f"[llm]\nbase = \"{base}\"\ndevice = \"cpu\"\n"
            "[prompt]\ndepartment = \"{label}. {name}\"\nmax_ticket_tokens = 48\n"
            "[sft]\nmax_steps = 2\nbatch_size = 4\ngrad_accum = 1\nlora_r = 4\nlora_alpha = 8\n"
            "gradient_checkpointing = false\nmax_seq = 2048\n" + sft)
