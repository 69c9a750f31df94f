"""FP8 serving: the decoder's linear layers with float8 (e4m3) weights and activations.

    model = to_fp8(model)      # a bf16 model (a LoRA adapter merged first); in place

Weights get one scale per output channel, activations one per token (computed on the fly); the
product runs through torch._scaled_mm (FP8 tensor cores: compute capability >= 8.9, e.g. H100,
L4, RTX 4090) with bf16 output. The LM head and embeddings stay in bf16: the head computes only
the few positions whose next-token distribution is scored.
"""

from __future__ import annotations

import warnings
import weakref

import torch
from torch import nn

E4M3 = torch.float8_e4m3fn
MAX = torch.finfo(E4M3).max


def supported(device) -> bool:
    """FP8 matrix products: CUDA GPUs of compute capability >= 8.9, or torch's CPU kernels."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_capability(device) >= (8, 9)
    return device.type == "cpu" and hasattr(torch, "_scaled_mm")


def quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(float8 rows, float32 (rows, 1) scales) with x ≈ q * scale, each row scaled to e4m3's range."""
    scale = x.abs().amax(dim=-1, keepdim=True).float().clamp(min=1e-12) / MAX
    return (x.float() / scale).clamp(-MAX, MAX).to(E4M3), scale


_compiled = None
_last = None      # (weakref to the last input, its version, its float8 rows, scales)


def fused_quantize_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """quantize_rows as one compiled kernel on CUDA (eager it is six passes over the activations);
    eager, with a warning, where torch.compile cannot run."""
    global _compiled
    if _compiled is None:
        _compiled = torch.compile(quantize_rows, dynamic=True)
    if _compiled is not quantize_rows:
        try:
            return _compiled(x)
        except Exception as e:  # no Triton / compiler here
            warnings.warn(f"FP8: torch.compile failed ({str(e).splitlines()[0][:200]}); quantizing eagerly")
            _compiled = quantize_rows
    return quantize_rows(x)


class FP8Linear(nn.Module):
    """y = x W^T + b with W in e4m3 (per-output-channel scale) and x quantized per token."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        w, s = quantize_rows(linear.weight.detach())
        self.register_buffer("weight", w)                     # (out, in) e4m3
        self.register_buffer("scale", s.reshape(1, -1))       # (1, out) float32
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach(), requires_grad=False)
        self.quant = fused_quantize_rows if w.is_cuda else quantize_rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        global _last
        shape = x.shape
        if _last is not None and _last[0]() is x and _last[1] == x._version:
            q, s = _last[2:]                  # q/k/v (and gate/up) read the same input: quantized once
        else:
            q, s = self.quant(x.reshape(-1, shape[-1]))
            _last = (weakref.ref(x), x._version, q, s)
        y = torch._scaled_mm(q, self.weight.t(), scale_a=s, scale_b=self.scale, out_dtype=x.dtype)
        if self.bias is not None:
            y += self.bias
        return y.reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, e4m3"


def to_fp8(model) -> nn.Module:
    """Swap every nn.Linear of the decoder layers for an FP8Linear (the LM head stays bf16); in place.

    A peft model is merged first (the adapter's weights are folded into the base). Layers whose
    sizes are not multiples of 16 (an FP8 kernel requirement) stay as they are."""
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    for layer in model.get_decoder().layers:
        for name, mod in list(layer.named_modules()):
            if isinstance(mod, nn.Linear) and mod.in_features % 16 == 0 and mod.out_features % 16 == 0:
                parent = layer.get_submodule(name.rpartition(".")[0]) if "." in name else layer
                setattr(parent, name.rpartition(".")[2], FP8Linear(mod))
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return model
