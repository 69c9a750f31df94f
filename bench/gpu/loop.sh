#!/usr/bin/env bash
# Issue 20's 30-day loop on one GPU: the ensemble (LLM + baseline; its LLM member's held-out accuracy is
# recorded every day as well) on the Chinese month and on Banking77 side by side, seed 0, diverse, 50
# reviews a day, a lean incremental night (bench/gpu/cn.toml, banking77.toml), then the GPU demo
# (scripts/demo_gpu.sh) beside them. Needs the wheels in /tmp/site and either the converted model in
# /tmp/qwen or the joined GGUF in /tmp/m/model.gguf plus the tokenizer files of a converted copy in
# /tmp/tok (converting the vocabulary is the slow part, so it is done once elsewhere).
# Everything lands in /tmp/out; /tmp/out/DONE when all is finished.
#   LOOP_MINUTES=18 B77=/tmp/shared/datasets/banking77/train.csv setsid nohup bash bench/gpu/loop.sh &
set -u
cd "$(dirname "$0")/../.."
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
O=/tmp/out
mkdir -p $O
nvidia-smi -L > $O/gpu.txt
if [ ! -f /tmp/qwen/config.json ]; then
  python3 - > $O/convert.log 2>&1 <<'EOF' || { echo "conversion failed" > $O/DONE; exit 1; }
import hashlib, shutil
from pathlib import Path
from transformers import AutoModelForCausalLM
from tests.qwen import SHA256, SIZE, sha256
g = Path("/tmp/m/model.gguf")
assert g.stat().st_size == SIZE and sha256(g) == SHA256, "the joined GGUF is not the expected file"
m = AutoModelForCausalLM.from_pretrained(g.parent, gguf_file=g.name)
m.hf_quantizer, m.is_quantized = None, False       # dequantized already (tests/smollm2.py convert)
if hasattr(m.config, "quantization_config"):
    del m.config.quantization_config
m.save_pretrained("/tmp/qwen.tmp")
for f in Path("/tmp/tok").iterdir():
    shutil.copy(f, "/tmp/qwen.tmp")
Path("/tmp/qwen.tmp").rename("/tmp/qwen")
print("converted")
EOF
fi
M=${LOOP_MINUTES:-0}
common="--kinds ensemble --strategies diverse --seeds 0 --budget 50 --jobs 1 --minutes $M"
python3 bench/loop_sim.py --dataset cn $common --extra bench/gpu/cn.toml --compare bench/results/loop_sim_cn.json \
  --out $O/loop_sim_cn_llm.json > $O/loop_cn.log 2>&1 &
python3 bench/loop_sim.py --dataset banking77 $common --extra bench/gpu/banking77.toml --data "${B77:-../shared/datasets/banking77/train.csv}" \
  --compare bench/results/loop_sim_banking77.json --out $O/loop_sim_banking77_llm.json > $O/loop_b77.log 2>&1 &
(time ROUTER_QWEN=/tmp/qwen bash scripts/demo_gpu.sh) > $O/demo.log 2>&1 &
wait
echo done > $O/DONE
