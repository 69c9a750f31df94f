"""A tiny randomly initialised Qwen2 with a byte-level BPE tokenizer trained on the spot,
saved as a Hugging Face folder: the real LLM code paths, in seconds, on a CPU."""

from __future__ import annotations

from pathlib import Path

CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# A short prompt so that examples stay a few dozen tokens long.
PROMPT = {"system": "", "user": "派单。部门：\n{departments}\n工单：{ticket}", "department": "{label}",
          "label": "name", "think": "no", "max_ticket_tokens": 64}


def build_tokenizer(corpus: list[str], vocab_size: int = 600):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   bos_token=None, unk_token=None)
    fast.chat_template = CHAT
    return fast


def build(folder: str | Path, corpus: list[str], hidden: int = 64, layers: int = 2, seed: int = 0,
          init: float = 0.2) -> Path:
    """Save a tiny Qwen2 + tokenizer into `folder`; returns it."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    tok = build_tokenizer(corpus)
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=hidden, intermediate_size=hidden * 2,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, tie_word_embeddings=True, initializer_range=init,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    model = Qwen2ForCausalLM(cfg)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
