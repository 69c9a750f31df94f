"""Load a causal LM and its tokenizer: 4-bit NF4 on CUDA, unquantized on CPU, LoRA and GGUF optional.

    model, tokenizer = load_model("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B")           # CUDA: NF4
    model, tokenizer = load_model("/models/base", adapter="/models/v3/adapter")        # + LoRA
    model, tokenizer = load_model("/models/smol", gguf_file="SmolLM2.Q4_1.gguf")       # GGUF
    model, tokenizer = load_model(path, device="cpu")                                  # tests
    model, tokenizer = load_model(base, adapter=a, precision="fp8")   # adapter merged, FP8 linears

precision: "nf4" (4-bit weights, bf16 compute), "bf16" (float32 on CPU), "fp8" (bf16 load, adapter
merged, decoder linears in FP8: router/llm/fp8.py) or "auto": fp8 on GPUs that have FP8 tensor
cores (compute capability >= 8.9: measured faster than NF4 there, bench/gpu_llm.py), nf4 on other
GPUs, full precision on CPU.

The signature is stable: training (router/llm/sft.py) loads its base model through it too.
Problems a user can fix (no such model, no adapter, no GPU, no bitsandbytes) raise LoadError
with a message naming the problem; the CLI prints it without a traceback.
"""

from __future__ import annotations

from pathlib import Path

import torch

from router.config import Precision
from router.llm import LoadError
from router.parallel import cuda_device

__all__ = ["load_model", "pick_device", "pick_precision", "quantization", "LoadError"]
PRECISIONS = tuple(Precision)


def pick_device(device: str = "auto") -> str:
    """auto: CUDA if present, else CPU. "cuda" is this process's GPU: cuda:LOCAL_RANK when a launcher
    started one process per GPU (router/parallel.py)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LoadError(f"device {device!r} asked for, but no CUDA GPU is visible "
                        "(check nvidia-smi, CUDA_VISIBLE_DEVICES, and that torch is a CUDA build)")
    return cuda_device() if device == "cuda" else device


def pick_precision(precision: str | None, device: str, quantize: bool | None = None) -> str:
    """nf4 | bf16 | fp8 for `device`; "auto" (or None) follows `quantize` when it is set, else the GPU."""
    precision = precision or "auto"
    if precision not in PRECISIONS:
        raise LoadError(f"[llm] precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    cuda = device.startswith("cuda")
    if precision == "auto":
        if quantize is not None:
            return "nf4" if quantize else "bf16"
        if not cuda:
            return "bf16"
        from router.llm import fp8

        return "fp8" if fp8.supported(device) else "nf4"
    if precision == "nf4" and not cuda:
        raise LoadError("4-bit (NF4) loading needs a CUDA GPU; on CPU load unquantized (precision bf16)")
    if precision == "fp8":
        from router.llm import fp8

        if not fp8.supported(device):
            raise LoadError(f"precision fp8 needs FP8 matrix products (a GPU of compute capability >= 8.9, "
                            f"e.g. H100, L4, RTX 4090); {device} has none: use nf4 or bf16")
    return precision


def quantization(quantize: bool = True):
    """4-bit NF4 with double quantization and bf16 compute (QLoRA's recipe); None to load as is."""
    if not quantize:
        return None
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:
        raise LoadError("4-bit loading needs bitsandbytes: pip install bitsandbytes "
                        "(or load unquantized with quantize=False)") from None
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=torch.bfloat16)


def _check_source(model_id: str, gguf_file: str | None) -> None:
    p = Path(model_id).expanduser()
    if not (p.exists() or model_id.startswith((".", "/", "~"))):
        return  # a hub id: transformers reports a missing one itself, we re-word it below
    if not p.is_dir():
        raise LoadError(f"model folder {p} does not exist")
    if gguf_file and not (p / gguf_file).exists():
        raise LoadError(f"GGUF file {p / gguf_file} does not exist")
    if not gguf_file and not (p / "config.json").exists():
        ggufs = sorted(x.name for x in p.glob("*.gguf"))
        hint = f" (it holds {', '.join(ggufs)}: pass gguf_file)" if ggufs else ""
        raise LoadError(f"{p} is not a Hugging Face model folder: no config.json{hint}")


def load_model(model_id: str, adapter: str | Path | None = None, gguf_file: str | None = None,
               device: str = "auto", quantize: bool | None = None, dtype: torch.dtype | None = None,
               trainable: bool = False, precision: str | None = None):
    """(model, tokenizer) ready for inference (eval mode), or for training with `trainable=True`.

    model_id   Hugging Face id or local folder
    adapter    optional LoRA adapter folder (peft), applied on top
    gguf_file  file name inside the `model_id` folder, for GGUF checkpoints (dequantized on load)
    device     "auto" (CUDA if present), "cuda", "cuda:1", "cpu"
    quantize   NF4 4-bit; default: on CUDA yes, on CPU no (bitsandbytes 4-bit needs a GPU)
    dtype      weights' dtype when not quantized; default bf16 on CUDA, float32 on CPU
    trainable  leave the adapter's weights trainable (for continued fine-tuning)
    precision  nf4 | bf16 | fp8 | auto (module docstring); when given it decides `quantize`
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(device)
    cuda = device.startswith("cuda")
    if precision is not None:
        precision = pick_precision(precision, device, quantize)
        if precision == "fp8" and trainable:
            raise LoadError("precision fp8 is for serving; train with nf4 or bf16")
        quantize = precision == "nf4"
    quantize = cuda if quantize is None else quantize
    if quantize and not cuda:
        raise LoadError("4-bit (NF4) loading needs a CUDA GPU; on CPU load unquantized (quantize=False)")
    dtype = dtype or (torch.bfloat16 if cuda or precision == "fp8" else torch.float32)
    model_id = str(model_id)
    _check_source(model_id, gguf_file)
    if adapter is not None and not (Path(adapter) / "adapter_config.json").exists():
        raise LoadError(f"LoRA adapter {adapter} not found (no adapter_config.json there)")
    kw = {"gguf_file": gguf_file} if gguf_file else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_id, **kw)
        model = AutoModelForCausalLM.from_pretrained(
            model_id, dtype=dtype, quantization_config=quantization(quantize),
            device_map={"": device}, **kw)
    except OSError as e:  # missing repo/files, no network
        raise LoadError(f"cannot load model {model_id!r}: {str(e).splitlines()[0]}") from None
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    if precision == "fp8":
        from router.llm.fp8 import to_fp8

        model = to_fp8(model)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.train(trainable)
    return model, tokenizer
