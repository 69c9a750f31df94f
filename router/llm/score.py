"""Exact label scoring: log P(label | prompt) for every department, without generating.

P(label) is the product of its tokens' probabilities, each under the full vocabulary softmax.
Three things keep it cheap:

1. The instruction prefix (role, departments, duties) is the same for every ticket: its keys and
   values are computed once (batch 1). Each batch attends to them with split_prefix_attention: all
   the batch's queries against the prefix in one flash-attention call, merged exactly (by the
   log-sum-exp) with attention over each row's own tokens, so the prefix is never copied per row
   (fallback: a KV cache joining the prefix to each batch layer by layer).
2. The labels' token sequences form a trie. One forward pass per batch feeds the ticket's tokens
   followed by the trie's inner nodes, under a tree attention mask: a trie node sees the prefix,
   the whole ticket and its own ancestors in the trie. So the extra cost per ticket is one token
   per inner node of the trie (labels of one token each add nothing at all).
3. Only the positions whose next-token distribution is needed go through the LM head.

    scorer = Scorer(model, prompt)
    logp = scorer.logprobs(texts, batch_size=32)   # (n, n_labels), log P(label | ticket)

Cost on an H100 (bench/gpu_llm.py, default prompt: 5,251-token prefix, number labels: 7 trie nodes):
67-78% of a plain forward pass over the tickets alone; the trie tokens and the attention over the
prefix are the difference.
"""

from __future__ import annotations

import warnings
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


SPLIT = "router_split_prefix"


def _prefix_attention(q, k, v, scale: float, kernel: str):
    """(output, log-sum-exp) of q (1, h, S, D) over k, v (1, h, P, D), no mask."""
    if kernel == "cudnn":
        o, lse = torch.ops.aten._scaled_dot_product_cudnn_attention(q, k, v, None, True, 0.0, False, False,
                                                                    scale=scale)[:2]
    elif kernel == "flash":
        o, lse = torch.ops.aten._scaled_dot_product_flash_attention(q, k, v, scale=scale)[:2]
    else:
        o, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, scale=scale)
    return o, lse.reshape(q.shape[:3])


def split_prefix_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention of a batch over the shared prefix plus each row's own tokens, in two exact parts.

    The prefix part runs as ONE unmasked attention call against the prefix's keys (batch 1): the B*T
    queries of the g query heads that share a key/value head are laid end to end, so grouped-query
    attention needs no copy of the prefix (a flash or cuDNN kernel that also returns the log-sum-exp).
    The per-row part (ticket + trie nodes, under the tree mask) is small and computed directly in
    float32. The two softmaxes are merged by their log-sum-exp, which gives exactly the attention
    over [prefix, row]. `module.router_prefix` holds that layer's prefix keys/values (1, kv_heads, P, D),
    `module.router_kernel` the prefix kernel ("cudnn", "flash" or "cpu").
    """
    pk, pv = module.router_prefix
    B, H, T, D = query.shape
    KV = key.shape[1]
    g = H // KV
    scale = scaling if scaling is not None else D ** -0.5
    q = query.reshape(B, KV, g, T, D)
    q1 = q.permute(1, 2, 0, 3, 4).reshape(1, KV, g * B * T, D)
    o1, l1 = _prefix_attention(q1, pk, pv, scale, module.router_kernel)
    o1 = o1.reshape(KV, g, B, T, D).permute(2, 0, 1, 3, 4).float()            # (B, KV, g, T, D)
    l1 = l1.reshape(KV, g, B, T).permute(2, 0, 1, 3).float()                  # (B, KV, g, T)
    s2 = torch.matmul(q.reshape(B, KV, g * T, D).float(), key.float().transpose(-1, -2)) * scale
    s2 = s2.reshape(B, KV, g, T, T) + attention_mask.float()[:, :, None]      # (B, 1, 1, T, T) mask
    l2 = torch.logsumexp(s2, dim=-1)
    o2 = torch.matmul(torch.softmax(s2, dim=-1).reshape(B, KV, g * T, T), value.float()).reshape(B, KV, g, T, D)
    w = torch.sigmoid(l1 - l2).unsqueeze(-1)                   # share of the prefix in each row's softmax
    out = (o2 + w * (o1 - o2)).to(query.dtype).reshape(B, H, T, D)
    return out.transpose(1, 2).contiguous(), None


def _split_supported(model) -> bool:
    """Flash attention with log-sum-exp: CPU, or CUDA GPUs from Ampere (compute capability 8) on."""
    if model.device.type == "cpu":
        return hasattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu")
    return model.device.type == "cuda" and torch.cuda.get_device_capability(model.device)[0] >= 8


def pick_kernel(device, kv_heads: int, head_dim: int, dtype=torch.bfloat16) -> str:
    """The prefix-attention kernel: "cpu" on CPU; on CUDA cuDNN where it runs and agrees with flash
    (it is the faster one on Hopper), else flash."""
    device = torch.device(device)
    if device.type != "cuda":
        return "cpu"
    g = torch.Generator(device=device).manual_seed(0)
    q, k, v = (torch.randn((1, kv_heads, n, head_dim), generator=g, device=device, dtype=dtype)
               for n in (300, 1000, 1000))
    ref = _prefix_attention(q, k, v, head_dim ** -0.5, "flash")
    try:
        got = _prefix_attention(q, k, v, head_dim ** -0.5, "cudnn")
    except RuntimeError:
        return "flash"
    ok = all(torch.allclose(a.float(), b.float(), atol=2e-2, rtol=2e-2) for a, b in zip(ref, got))
    return "cudnn" if ok else "flash"


def length_order(tickets: Sequence[Sequence[int]]) -> list[int]:
    """Positions of `tickets` (token ids) by length, ties in input order: the order batches are cut from."""
    return sorted(range(len(tickets)), key=lambda i: (len(tickets[i]), i))


class Scorer:
    def __init__(self, model, prompt, cache_prefix: bool = True, split: bool | None = None,
                 kernel: str = "auto"):
        """cache_prefix: compute the prefix once (else it is part of every row: the reference path).
        split: attend to the prefix with split_prefix_attention (default where supported), else
        through a KV cache whose prefix is joined to each batch layer by layer.
        kernel: the split path's prefix kernel, "auto" (pick_kernel), "cudnn", "flash" or "cpu"."""
        self.model, self.prompt = model, prompt
        self.trie = build_trie(prompt.label_ids, prompt.end_id)
        self.kv = prefix_cache(model, prompt.prefix) if cache_prefix else None
        self.split = bool(self.kv is not None and (_split_supported(model) if split is None else split))
        self.kernel = None
        if self.split:
            from transformers import AttentionInterface

            AttentionInterface.register(SPLIT, split_prefix_attention)
            k0 = self.kv[0][0]
            self._use_kernel(pick_kernel(k0.device, k0.shape[1], k0.shape[-1], k0.dtype) if kernel == "auto" else kernel)
        # Every token some label uses, and where each (node, token) step reads from.
        self.vocab = sorted({t for s in self.trie.steps for _, t in s})
        col = {t: i for i, t in enumerate(self.vocab)}
        pairs = [(j, n, col[t]) for j, s in enumerate(self.trie.steps) for n, t in s]
        dev = model.device
        self._label = torch.tensor([p[0] for p in pairs], device=dev)
        self._node = torch.tensor([p[1] for p in pairs], device=dev)
        self._col = torch.tensor([p[2] for p in pairs], device=dev)
        self._vocab = torch.tensor(self.vocab, device=dev)

    def _use_kernel(self, kernel: str) -> None:
        self.kernel = kernel
        for layer, kv in zip(_parts(self.model)[0].layers, self.kv):
            layer.self_attn.router_prefix = kv
            layer.self_attn.router_kernel = kernel

    @torch.no_grad()
    def batch(self, tickets: Sequence[Sequence[int]]) -> torch.Tensor:
        """(B, n_labels) float32 log-probabilities for tickets given as token ids (their part only)."""
        if self.split:
            self._use_kernel(self.kernel)  # the layers may hold another Scorer's prefix (same model)
            try:
                return self._batch(tickets)
            except torch.cuda.OutOfMemoryError:
                raise
            except RuntimeError as e:
                if self.kernel == "cudnn":  # cuDNN refused these sizes: the flash kernel from now on
                    warnings.warn(f"cuDNN prefix attention failed ({str(e).splitlines()[0]}); using flash")
                    self._use_kernel("flash")
                    return self.batch(tickets)
                # a GPU or torch build without the flash kernel: use the KV cache
                warnings.warn(f"split prefix attention unavailable ({str(e).splitlines()[0]}); using the KV cache")
                self.split = False
        return self._batch(tickets)

    def _batch(self, tickets: Sequence[Sequence[int]]) -> torch.Tensor:
        from transformers import DynamicCache

        model, trie, dev = self.model, self.trie, self.model.device
        decoder, head = _parts(model)
        if self.kv is None:  # no shared cache: the prefix is part of every ticket
            tickets = [list(self.prompt.prefix) + list(t) for t in tickets]
        B, N = len(tickets), trie.size
        P = 0 if self.kv is None else self.kv[0][0].shape[-2]
        n = [len(t) for t in tickets]
        L = max(n)
        T = L + N
        pad = self.prompt.tokenizer.pad_token_id or 0
        host = np.full((B, T), pad, dtype=np.int64)           # built on the host, copied once
        for b, t in enumerate(tickets):  # left padding: every ticket ends at column L-1
            host[b, L - len(t):L] = t
        host[:, L:] = trie.tokens
        ids = torch.from_numpy(host).to(dev, non_blocking=True)
        lens = torch.tensor(n, device=dev)
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
        if self.split:
            see = see[:, :, P:]                                # the prefix part needs no mask
        mask = torch.zeros(see.shape, dtype=dtype, device=dev).masked_fill_(~see, torch.finfo(dtype).min)
        cache = None
        if self.kv is not None and not self.split:
            SharedPrefix = _shared_prefix_layer()
            cache = DynamicCache(ddp_cache_data=self.kv)
            cache.layers = [SharedPrefix(k, v) for k, v in self.kv]
        cfg = decoder.config
        impl = cfg._attn_implementation
        if self.split:
            cfg._attn_implementation = SPLIT
        try:
            hidden = decoder(input_ids=ids, attention_mask=mask[:, None], position_ids=pos,
                             past_key_values=cache, use_cache=cache is not None).last_hidden_state
        finally:
            cfg._attn_implementation = impl
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
        order = length_order(tickets)
        out = np.zeros((len(tickets), len(self.trie.steps)), dtype=np.float64)
        done = []            # (indices, results on the device): copied at the end, so the GPU never waits
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
            done.append((idx, res))
            i += len(idx)
            if advance:
                advance(len(idx))
        for idx, res in done:
            out[idx] = res.double().cpu().numpy()
        return out
