#!/usr/bin/env bash
# The main job with the LLM on a GPU machine, with the small real model (Qwen2.5-Coder-0.5B-Instruct,
# tests/qwen.py): import the sample history, fine-tune the LLM (LoRA, bf16 base, 2 epochs: the settings
# bench/gpu_real.py measured), route the sample day, print the registry. State in .router-gpu/.
# Needs the CUDA build of torch in the active environment (README: GPU machines) and PyPI access once.
# The CPU demo (scripts/demo.sh, the baseline) stays the default.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA GPU: run scripts/demo.sh')"
command -v router > /dev/null || router() { python3 -m router.cli "$@"; }   # not pip-installed: from the checkout
model=$(python3 -m tests.qwen | tail -n 1)          # download, join, check, convert once (cached)
export ROUTER_PATHS__HOME=.router-gpu ROUTER_LLM__BASE="$model" ROUTER_LLM__DEVICE=cuda ROUTER_LLM__PRECISION=bf16 \
  ROUTER_SFT__BASE=bf16 ROUTER_SFT__EPOCHS=2 ROUTER_SFT__BATCH_SIZE=32 ROUTER_SFT__GRAD_ACCUM=1 \
  ROUTER_SFT__LEARNING_RATE=2e-4 ROUTER_SFT__GRADIENT_CHECKPOINTING=false ROUTER_SFT__OPTIM=adamw_torch \
  ROUTER_SFT__MAX_SEQ=256
router import data/sample/history.jsonl
router train --kind llm
router classify data/sample/day.jsonl -o day.gpu.routed.jsonl     # outside the store's home
router models
echo "routed tickets: day.gpu.routed.jsonl; review queue: ROUTER_PATHS__HOME=.router-gpu router label"
