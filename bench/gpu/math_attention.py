"""bench/loop_sim.py with the LoRA fit on PyTorch's math attention only and scoring on the flash prefix
kernel (not cuDNN): bench/gpu/loop.sh's second try when the Chinese month's fit diverges (NaN) with the
default kernels. Same arguments as bench/loop_sim.py; needs --jobs 1 (the patches hold in this process)."""
import runpy
import sys
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

import router.llm.score as score
import router.llm.sft as sft

pick = score.pick_kernel
sft.without_cudnn_attention = lambda: sdpa_kernel([SDPBackend.MATH])
score.pick_kernel = lambda device, *a, **k: "flash" if torch.device(device).type == "cuda" else pick(device, *a, **k)
loop_sim = Path(__file__).resolve().parents[1] / "loop_sim.py"
sys.argv = [str(loop_sim), *sys.argv[1:]]
runpy.run_path(str(loop_sim), run_name="__main__")
