#!/usr/bin/env bash
# The GPU benchmarks of issue 20 in one go, on the GPU machine, once Qwen2.5-Coder-0.5B is converted
# to /tmp/qwen (tests/qwen.py's convert) and the wheels are in /tmp/site: bench/gpu_real.py and the
# 30-day loop with the LLM and the ensemble (Chinese month, Banking77) side by side on the one GPU.
# Everything lands in /tmp/out (logs, JSON, the loops' per-day records as they come).
#   LOOP_MINUTES=13 setsid nohup bash bench/gpu/run.sh > /tmp/out/run.log 2>&1 &
set -u
cd "$(dirname "$0")/../.."
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
mkdir -p /tmp/out
M=${LOOP_MINUTES:-13}
nvidia-smi -L > /tmp/out/gpu.txt
python3 bench/gpu_real.py --model /tmp/qwen --steps cn,banking77,incremental,clinc150,shape7b \
  --max-train 4000 --max-test 1000 --tokenizer7b ../shared/tokenizers/deepseek-r1-distill-qwen-7b-tokenizer \
  --out /tmp/out/gpu_real.json > /tmp/out/gpu_real.log 2>&1 &
python3 bench/loop_sim.py --dataset cn --kinds llm,ensemble --strategies diverse --seeds 0 --budget 50 --jobs 2 \
  --minutes "$M" --extra bench/gpu/cn.toml --out /tmp/out/loop_sim_cn_llm.json > /tmp/out/loop_cn.log 2>&1 &
python3 bench/loop_sim.py --dataset banking77 --kinds llm,ensemble --strategies diverse --seeds 0 --budget 50 \
  --jobs 2 --minutes "$M" --extra bench/gpu/banking77.toml --data ../shared/datasets/banking77/train.csv \
  --out /tmp/out/loop_sim_banking77_llm.json > /tmp/out/loop_b77.log 2>&1 &
wait
echo all done
