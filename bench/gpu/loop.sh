#!/usr/bin/env bash
# Issue 20's 30-day loop on the GPU: the ensemble (LLM + baseline; its members' held-out accuracy is
# recorded every day as well) on the Chinese month, seed 0, diverse, 50 reviews a day, a lean incremental
# night (bench/gpu/cn.toml), with the GPU demo (scripts/demo_gpu.sh) beside it on the same GPU. With a
# second GPU (or on the same one with B77_SAME_GPU=1), Banking77 runs there with a longer night
# (bench/gpu/banking77_e2.toml; B77_TOML picks another night, B77_OUT names its files; B77_TOML2 and B77_OUT2
# run a second night beside it, for a paired comparison; each TOML variable may name several files, applied in
# order). Likewise CN_TOML and CN_OUT for the month, and CN_TOML2 and CN_OUT2 for a second month beside it, e.g.
#   CN_TOML="bench/gpu/cn.toml bench/gpu/fitted.toml" CN_OUT=loop_sim_cn_llm_fitted CN_TOML2=bench/gpu/cn.toml
#   CN_OUT2=loop_sim_cn_llm_mean DEMO=0 LOOP_MINUTES=24 bash bench/gpu/loop.sh    (fitted weights against the mean)
# KINDS=llm runs the LLM alone in every loop (or KINDS=llm,ensemble both, one after the other).
# DEMO=0 leaves the demo out, CN=0 the month; SCALE=1 adds bench/gpu_real.py's scale step (from scratch against incremental at
# 8,000 and 10,000 Chinese labels) on GPU 0.
# If the month's LoRA fit diverges (NaN) with the default attention kernels, the month is run again
# with math attention for training and the flash prefix kernel for scoring (bench/gpu/math_attention.py).
# Needs the wheels in /tmp/site and either the converted model in $QWEN (/tmp/qwen) or the joined GGUF in
# /tmp/m/model.gguf plus the tokenizer files of a converted copy in /tmp/tok (converting the vocabulary is
# the slow part, so it is done once elsewhere). Everything lands in $OUTDIR (/tmp/out); DONE when finished.
#   LOOP_MINUTES=18 B77=/tmp/b77/train.csv setsid nohup bash bench/gpu/loop.sh > /dev/null 2>&1 &
# CPU dry run (tiny model): QWEN=DIR CN_TOML=FILE OUTDIR=DIR DAYS=1 bash bench/gpu/loop.sh
set -u
cd "$(dirname "$0")/../.."
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
O=${OUTDIR:-/tmp/out}
Q=${QWEN:-/tmp/qwen}
mkdir -p "$O"
{ nvidia-smi -L 2>&1; python3 -c "import torch, transformers, peft
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn', torch.backends.cudnn.version(),
      'transformers', transformers.__version__, 'peft', peft.__version__)"; } > "$O/gpu.txt" 2>&1
if [ ! -f "$Q/config.json" ]; then
  QWEN_DIR=$Q python3 - > "$O/convert.log" 2>&1 <<'EOF' || { echo "conversion failed" > "$O/DONE"; exit 1; }
import os, shutil, time
from pathlib import Path
from transformers import AutoModelForCausalLM
from tests.qwen import SHA256, SIZE, sha256
t = time.perf_counter()
g, q = Path("/tmp/m/model.gguf"), Path(os.environ["QWEN_DIR"])
assert g.stat().st_size == SIZE and sha256(g) == SHA256, "the joined GGUF is not the expected file"
m = AutoModelForCausalLM.from_pretrained(g.parent, gguf_file=g.name)
m.hf_quantizer, m.is_quantized = None, False       # dequantized already (tests/smollm2.py convert)
if hasattr(m.config, "quantization_config"):
    del m.config.quantization_config
tmp = q.with_name(q.name + ".tmp")
m.save_pretrained(tmp)
for f in Path("/tmp/tok").iterdir():
    shutil.copy(f, tmp)
tmp.rename(q)
print(f"converted in {time.perf_counter() - t:.0f} s")
EOF
fi
M=${LOOP_MINUTES:-0}
GPUS=$(nvidia-smi -L 2>/dev/null | grep -c ^GPU)
common="--kinds ${KINDS:-ensemble} --strategies diverse --seeds 0 --budget 50 --jobs 1 --days ${DAYS:-30}"
cn() {  # $1: the python command (loop_sim or its math-attention wrapper), $2: minutes, $3: out name, then
        # one or more --extra TOML files (applied in order)
  local py=$1 min=$2 out=$3 extras=() f
  shift 3
  for f in "$@"; do extras+=(--extra "$f"); done
  python3 $py --dataset cn $common --minutes "$min" "${extras[@]}" \
    --compare bench/results/loop_sim_cn.json --out "$O/$out.json" > "$O/$out.log" 2>&1
}
CN_OUT=${CN_OUT:-loop_sim_cn_llm}
[ "${CN:-1}" = 1 ] && (
  export CUDA_VISIBLE_DEVICES=0
  t0=$(date +%s)
  cn bench/loop_sim.py "$M" "$CN_OUT" ${CN_TOML:-bench/gpu/cn.toml}
  rc=$?
  echo "cn loop exit $rc after $(( $(date +%s) - t0 )) s" >> "$O/gpu.txt"
  left=$(python3 -c "m = $M; print(0 if m == 0 else round(m - ($(date +%s) - $t0) / 60, 1))")
  if [ $rc -ne 0 ] && grep -q -E "NaN|diverged" "$O/$CN_OUT.log" \
     && python3 -c "import sys; sys.exit(not ($left == 0 or $left >= 3))"; then
    echo "cn: NaN with the default kernels; again with math attention, $left min" >> "$O/gpu.txt"
    cn bench/gpu/math_attention.py "$left" "${CN_OUT}_math" ${CN_TOML:-bench/gpu/cn.toml}
    echo "cn math-attention loop exit $?" >> "$O/gpu.txt"
  fi
) &
b77() {  # $1: the GPU, $2: out name, then one or more --extra TOML files (applied in order)
  local gpu=$1 out=$2 extras=() f
  shift 2
  for f in "$@"; do extras+=(--extra "$f"); done
  CUDA_VISIBLE_DEVICES=$gpu python3 bench/loop_sim.py --dataset banking77 $common --minutes "$M" "${extras[@]}" \
    --data "${B77:-/tmp/b77/train.csv}" --compare bench/results/loop_sim_banking77.json --out "$O/$out.json" \
    > "$O/$out.log" 2>&1
}
# a second month beside it on the same GPU, data and seed, for a paired comparison
[ "${CN:-1}" = 1 ] && [ -n "${CN_TOML2:-}" ] && CUDA_VISIBLE_DEVICES=0 cn bench/loop_sim.py "$M" \
  "${CN_OUT2:-loop_sim_cn_llm_b}" $CN_TOML2 &
if [ "$GPUS" -ge 2 ] || [ "${B77_SAME_GPU:-0}" = 1 ]; then
  b77 $(( GPUS >= 2 ? 1 : 0 )) "${B77_OUT:-loop_sim_banking77_llm_e2}" ${B77_TOML:-bench/gpu/banking77_e2.toml} &
  # a second night beside it on the same data and seed, for a paired comparison
  [ -n "${B77_TOML2:-}" ] && b77 $(( GPUS >= 3 ? 2 : 0 )) "${B77_OUT2:-loop_sim_banking77_llm_b}" $B77_TOML2 &
fi
[ "${SCALE:-0}" = 1 ] && CUDA_VISIBLE_DEVICES=0 python3 bench/gpu_real.py --model "$Q" --steps scale \
  --home /tmp/gpu-real --out "$O/gpu_real_scale.json" > "$O/gpu_real_scale.log" 2>&1 &
[ "${DEMO:-1}" = 1 ] && (export CUDA_VISIBLE_DEVICES=0; time ROUTER_QWEN=$Q bash scripts/demo_gpu.sh) > "$O/demo.log" 2>&1 &
wait
echo done > "$O/DONE"
