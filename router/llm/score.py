"""Exact label scoring: log P(label | prompt) for every department, without generating.

P(label) is the product of its tokens' probabilities, each under the full vocabulary softmax.
Three things keep it cheap:

1. The instruction prefix (role, departments, duties) is the same for every ticket: its KV cache
   is computed once (batch 1) and joined to each batch's keys layer by layer, never stored B times.
2. The labels' token sequences form a trie. One forward pass per batch feeds the ticket's tokens
   followed by the trie's inner nodes, under a tree attention mask: a trie node sees the prefix,
   the whole ticket and its own ancestors in the trie. So the extra cost per ticket is one token
   per inner node of the trie (labels of one token each add nothing at all).
3. Only the positions whose next-token distribution is needed go through the LM head.

    scorer = Scorer(model, prompt)
    logp = scorer.logprobs(texts, batch_size=32)   # (n, n_labels), log P(label | ticket)

Cost on an H100 (bench/gpu_llm.py): with 1-2-token labels ("number") scoring runs at ~80% of a
plain forward pass over the tickets alone; department names (143 trie nodes) cost ~1.6x more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch


@dataclass
class Trie:
    """The labels' token sequences as a trie.

    Node 0 is the ticket's last token (the answer's start); nodes 1..n are fed to the model:
    node i holds `tokens[i-1]`, sits at `depth[i-1]` (1 = first answer token), under `parent[i-1]`.
    `steps[j]` lists (node, token) pairs whose log-probabilities add up to label j's.
    """
    tokens: list[int]
    parent: list[int]
    depth: list[int]
    steps: list[list[tuple[int, int]]]

    @property
    def size(self) -> int:
        return len(self.tokens)


def build_trie(label_ids: Sequence[Sequence[int]], end_id: int) -> Trie:
    seqs = [list(s) for s in label_ids]
    if any(not s for s in seqs):
        raise ValueError("a label has no tokens")
    # A label that is a prefix of another one ends with the end-of-turn token, so they differ.
    keys = {tuple(s) for s in seqs}
    seqs = [s + [end_id] if any(len(o) > len(s) and tuple(o[:len(s)]) == tuple(s) for o in keys) else s
            for s in seqs]
    node = {(): 0}
    tokens, parent, depth, steps = [], [], [], []
    for s in seqs:
        path = []
        for k, tok in enumerate(s):
            path.append((node[tuple(s[:k])], tok))
            key = tuple(s[:k + 1])
            if k + 1 < len(s) and key not in node:  # an inner node: its next-token distribution is needed
                node[key] = len(tokens) + 1
                tokens.append(tok)
                parent.append(node[tuple(s[:k])])
                depth.append(k + 1)
        steps.append(path)
    return Trie(tokens, parent, depth, steps)


def _parts(model):
    """(decoder, lm_head) of a causal LM, a peft-wrapped one too."""
    return model.get_decoder(), model.get_output_embeddings()


@torch.no_grad()
def prefix_cache(model, prefix: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Keys and values of the shared prefix, per layer, batch 1."""
    decoder, _ = _parts(model)
    ids = torch.tensor([list(prefix)], device=model.device)
    out = decoder(input_ids=ids, use_cache=True)
    return [(layer.keys, layer.values) for layer in out.past_key_values.layers]


def _shared_prefix_layer():
    from transformers.cache_utils import DynamicLayer

    class SharedPrefix(DynamicLayer):
        """One layer's prefix keys/values (batch 1), joined to each batch's new ones on the fly.

        Nothing is stored: a batch never holds B copies of the prefix in every layer at once, only
        the layer being computed does (a DynamicCache would keep all of them until the pass ends)."""

        def __init__(self, keys: torch.Tensor, values: torch.Tensor):
            super().__init__()
            self.keys, self.values = keys, values
            self.dtype, self.device, self.is_initialized = keys.dtype, keys.device, True

        def update(self, key_states, value_states, *args, **kwargs):
            b = key_states.shape[0]
            return (torch.cat([self.keys.expand(b, -1, -1, -1), key_states], dim=-2),
                    torch.cat([self.values.expand(b, -1, -1, -1), value_states], dim=-2))

    return SharedPrefix


class Scorer:
    def __init__(self, model, prompt, cache_prefix: bool = True):
        self.model, self.prompt = model, prompt
        self.trie = build_trie(prompt.label_ids, prompt.end_id)
        self.kv = prefix_cache(model, prompt.prefix) if cache_prefix else None
        # Every token some label uses, and where each (node, token) step reads from.
        self.vocab = sorted({t for s in self.trie.steps for _, t in s})
        col = {t: i for i, t in enumerate(self.vocab)}
        pairs = [(j, n, col[t]) for j, s in enumerate(self.trie.steps) for n, t in s]
        dev = model.device
        self._label = torch.tensor([p[0] for p in pairs], device=dev)
        self._node = torch.tensor([p[1] for p in pairs], device=dev)
        self._col = torch.tensor([p[2] for p in pairs], device=dev)
        self._vocab = torch.tensor(self.vocab, device=dev)

    @torch.no_grad()
    def batch(self, tickets: Sequence[Sequence[int]]) -> torch.Tensor:
        """(B, n_labels) float32 log-probabilities for tickets given as token ids (their part only)."""
        from transformers import DynamicCache

        model, trie, dev = self.model, self.trie, self.model.device
        decoder, head = _parts(model)
        if self.kv is None:  # no shared cache: the prefix is part of every ticket
            tickets = [list(self.prompt.prefix) + list(t) for t in tickets]
        B, N = len(tickets), trie.size
        P = 0 if self.kv is None else self.kv[0][0].shape[-2]
        lens = torch.tensor([len(t) for t in tickets], device=dev)
        L = int(lens.max())
        T = L + N
        pad = self.prompt.tokenizer.pad_token_id or 0
        ids = torch.full((B, T), pad, dtype=torch.long, device=dev)
        for b, t in enumerate(tickets):  # left padding: every ticket ends at column L-1
            ids[b, L - len(t):L] = torch.tensor(t, device=dev)
        ids[:, L:] = torch.tensor(trie.tokens, dtype=torch.long, device=dev)
        # Positions: a ticket continues the prefix; a trie node at depth d follows the ticket by d.
        col = torch.arange(L, device=dev)[None, :]
        start = (L - lens)[:, None]
        pos = torch.empty((B, T), dtype=torch.long, device=dev)
        pos[:, :L] = (P + col - start).clamp(min=P)
        depth = torch.tensor(trie.depth, device=dev)
        pos[:, L:] = P + lens[:, None] - 1 + depth[None, :]
        # Attention: prefix for all; ticket tokens causally, pads never; trie nodes their ancestors.
        real = col >= start                                    # (B, L)
        see = torch.zeros((B, T, P + T), dtype=torch.bool, device=dev)
        see[:, :, :P] = True
        see[:, :L, P:P + L] = torch.tril(torch.ones(L, L, dtype=torch.bool, device=dev))[None] & real[:, None, :]
        see[:, :L, P:P + L] |= torch.eye(L, dtype=torch.bool, device=dev)[None]  # pads see themselves (no empty rows)
        see[:, L:, P:P + L] = real[:, None, :]
        anc = torch.eye(N, dtype=torch.bool, device=dev)
        for i, p in enumerate(trie.parent):  # parents come before children
            if p > 0:
                anc[i] |= anc[p - 1]
        see[:, L:, P + L:] = anc[None]
        dtype = decoder.get_input_embeddings().weight.dtype
        mask = torch.zeros(see.shape, dtype=dtype, device=dev).masked_fill_(~see, torch.finfo(dtype).min)
        cache = None
        if self.kv is not None:
            SharedPrefix = _shared_prefix_layer()
            cache = DynamicCache(ddp_cache_data=self.kv)
            cache.layers = [SharedPrefix(k, v) for k, v in self.kv]
        hidden = decoder(input_ids=ids, attention_mask=mask[:, None], position_ids=pos,
                         past_key_values=cache, use_cache=cache is not None).last_hidden_state
        hidden = hidden[:, L - 1:]                              # node 0 = last ticket token, then nodes 1..N
        logp = self._head_logprobs(head, hidden)                # (B, N+1, len(vocab))
        steps = logp[:, self._node, self._col]                  # (B, n_steps)
        out = torch.zeros((B, len(trie.steps)), dtype=torch.float32, device=dev)
        return out.index_add_(1, self._label, steps)

    def _head_logprobs(self, head, hidden: torch.Tensor, rows: int = 4096) -> torch.Tensor:
        """log-softmax over the full vocabulary, kept only for the labels' tokens; in row chunks."""
        B, M, H = hidden.shape
        flat = hidden.reshape(B * M, H)
        out = []
        for i in range(0, B * M, rows):
            logits = head(flat[i:i + rows]).float()
            out.append(logits[:, self._vocab] - torch.logsumexp(logits, dim=-1, keepdim=True))
        return torch.cat(out).reshape(B, M, -1)

    def logprobs(self, texts: Sequence[str], batch_size: int = 32,
                 advance: Callable[[int], None] | None = None) -> np.ndarray:
        """(n, n_labels) log P(label | ticket), in input order.

        Tickets are sorted by length and scored in batches of similar lengths; on CUDA out-of-memory
        the batch is halved and retried. `advance(k)` is called after each batch (a progress bar).
        """
        tickets = [self.prompt.ticket(t) for t in texts]
        order = sorted(range(len(tickets)), key=lambda i: (len(tickets[i]), i))
        out = np.zeros((len(tickets), len(self.trie.steps)), dtype=np.float64)
        i, size = 0, max(1, int(batch_size))
        while i < len(order):
            idx = order[i:i + size]
            try:
                res = self.batch([tickets[j] for j in idx])
            except torch.cuda.OutOfMemoryError:
                if size == 1:
                    raise
                torch.cuda.empty_cache()
                size //= 2
                continue
            out[idx] = res.double().cpu().numpy()
            i += len(idx)
            if advance:
                advance(len(idx))
        return out
