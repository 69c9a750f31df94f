"""Constrained generation: the model writes a department label, and outlines allows nothing else.

    labels, p = generate_labels(model, prompt, texts)   # labels[i] is always one of prompt.labels

outlines (1.x; outlines-core) compiles the choice between the label strings (`outlines.types.Choice`)
into a logits processor; we run transformers' greedy `generate` with it on the very same prompt ids
that exact scoring uses. The processor's vocabulary maps every token to its exact bytes: outlines'
own transformers adapter maps tokens to text, which loses byte-level tokens that hold part of a
UTF-8 character (common in Chinese), and then some department names cannot be written.
`p[i]` is the probability of the generated label under the constrained (renormalised) steps.
Exact scoring (score.py) is the default: it ranks every department and gives calibrated
probabilities; this path exists for `router classify --decode generate` and for comparison.
"""

from __future__ import annotations

from typing import Callable, Sequence

import json
import re

import numpy as np
import torch


def token_bytes(tokenizer) -> dict[bytes, list[int]]:
    """Every token's exact bytes (byte-level BPE, SentencePiece with <0xNN> byte fallback, or plain)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    backend = getattr(tokenizer, "backend_tokenizer", None)
    byte_level = backend is not None and "ByteLevel" in json.dumps(json.loads(backend.to_str()).get("decoder"))
    unbyte = {c: b for b, c in bytes_to_unicode().items()}
    special = set(tokenizer.all_special_ids)
    out: dict[bytes, list[int]] = {}
    for tok, i in tokenizer.get_vocab().items():
        if i in special:
            continue
        if m := re.fullmatch(r"<0x([0-9A-Fa-f]{2})>", tok):
            b = bytes([int(m.group(1), 16)])
        elif byte_level and all(c in unbyte for c in tok):
            b = bytes(unbyte[c] for c in tok)
        else:
            b = tok.replace("\u2581", " ").encode()
        out.setdefault(b, []).append(i)
    return out


class Constrained:
    """An outlines logits processor restricted to `labels`, for one model and tokenizer."""

    def __init__(self, model, prompt):
        from outlines.backends.outlines_core import OutlinesCoreLogitsProcessor
        from outlines.types import Choice
        from outlines.types.dsl import to_regex
        from outlines_core import Index, Vocabulary

        self.model, self.prompt = model, prompt
        vocab = Vocabulary(prompt.end_id, token_bytes(prompt.tokenizer))
        regex = to_regex(Choice(list(prompt.labels)))
        self.processor = OutlinesCoreLogitsProcessor(Index(regex, vocab), "torch")
        self.max_new_tokens = max(len(x.encode()) for x in prompt.labels) + 1  # worst case: a token per byte

    @torch.no_grad()
    def batch(self, texts: Sequence[str], **kw) -> tuple[list[str], list[float]]:
        from transformers import LogitsProcessorList

        tok, dev = self.prompt.tokenizer, self.model.device
        seqs = [self.prompt.ids(t) for t in texts]
        L = max(map(len, seqs))
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        ids = torch.full((len(seqs), L), pad, dtype=torch.long, device=dev)
        att = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, L - len(s):] = torch.tensor(s, device=dev)
            att[i, L - len(s):] = 1
        self.processor.reset()
        gen = dict(max_new_tokens=self.max_new_tokens, do_sample=False, num_beams=1,
                   pad_token_id=pad, eos_token_id=self.prompt.end_id)
        gen.update(kw)
        out = self.model.generate(input_ids=ids, attention_mask=att, logits_processor=LogitsProcessorList([self.processor]),
                                  output_scores=True, return_dict_in_generate=True, **gen)
        new = out.sequences[:, L:]
        labels = [tok.decode(row, skip_special_tokens=True).strip() for row in new]
        # Probability of the chosen tokens under the processed (constrained) distribution, until the end token.
        logp = torch.zeros(len(seqs), device=dev)
        alive = torch.ones(len(seqs), dtype=torch.bool, device=dev)
        for k, scores in enumerate(out.scores):
            step = scores.float().log_softmax(-1).gather(1, new[:, k:k + 1]).squeeze(1)
            logp += torch.where(alive, step.nan_to_num(0.0), torch.zeros_like(step))
            alive &= new[:, k] != self.prompt.end_id
        return labels, logp.exp().tolist()


def generate_labels(model, prompt, texts: Sequence[str], batch_size: int = 1,
                    advance: Callable[[int], None] | None = None, **kw) -> tuple[list[str], np.ndarray]:
    """Greedy constrained labels for `texts` (and their constrained probability), in input order."""
    c = Constrained(model, prompt)
    labels, probs = [], []
    for i in range(0, len(texts), batch_size):
        lab, p = c.batch(texts[i:i + batch_size], **kw)
        labels += lab
        probs += p
        if advance:
            advance(len(lab))
    return labels, np.array(probs)
