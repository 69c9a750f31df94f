#!/usr/bin/env bash
# Stages what bench/gpu/loop.sh needs on a lent GPU machine that has no network and takes at most 64 MiB a
# call, working tree included (../shared/gpu/README.md). Into an ignored folder ($STAGE, default .gpu):
#   whl/        the wheels the machine lacks (../shared/gpu/fetch-wheels.sh)
#   tok.tgz     the tokenizer files of the converted Qwen2.5-Coder-0.5B (converting the vocabulary is the slow
#               part, so it is done here once; `python -m tests.qwen` fetches and converts)
#   b77/        Banking77's train split and categories, from ../shared/datasets
#   q/part.NN   the model's joined GGUF in parts that fit one call each beside the working tree
# then prints the device calls, in order. Each step is skipped when its output is there.
#   bash bench/gpu/stage.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
S=${STAGE:-.gpu}
PY=${PYTHON:-python}
LIMIT=$((64 * 1024 * 1024))
mkdir -p "$S/b77" "$S/q"
git check-ignore -q "$S/" || { echo "/$S/" >> .git/info/exclude; echo "added /$S/ to .git/info/exclude"; }

[ -n "$(ls "$S/whl" 2>/dev/null)" ] || ../shared/gpu/fetch-wheels.sh "$S/whl"
if [ ! -f "$S/tok.tgz" ]; then
  q=$($PY -c "from tests.qwen import ensure; print(ensure())")
  tar czf "$S/tok.tgz" -C "$q" $(cd "$q" && ls tokenizer.json tokenizer_config.json chat_template.jinja 2>/dev/null)
fi
[ -f "$S/b77/train.csv" ] || cp ../shared/datasets/banking77/train.csv ../shared/datasets/banking77/categories.json "$S/b77/"

tree=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
part=$(( (LIMIT - tree - 2 * 1024 * 1024) / 1024 / 1024 ))   # MiB, with 2 MiB to spare
[ "$part" -ge 8 ] || { echo "the working tree ($((tree / 1048576)) MiB) leaves no room for a model part" >&2; exit 1; }
if [ -z "$(ls "$S/q")" ]; then
  g=$($PY -c "from tests.qwen import fetch_gguf; print(fetch_gguf())")
  split -b "${part}M" -d "$g" "$S/q/part."
fi
for f in "$S"/q/part.*; do
  [ $(( $(stat -c %s "$f") + tree )) -le "$LIMIT" ] || { echo "$f and the working tree exceed 64 MiB: rm -r $S/q and run again" >&2; exit 1; }
done

first=$(du -cb "$S/whl" "$S/tok.tgz" "$S/b77" | tail -1 | cut -f1)   # the first call's carry
[ $((first + tree)) -le "$LIMIT" ] || echo "warning: the first call's carry and the tree exceed 64 MiB" >&2
n=$(ls "$S/q" | wc -l)
cat <<EOF
staged in $S: wheels, tok.tgz, b77/, $n model parts of at most $part MiB (working tree $((tree / 1048576)) MiB)
device calls, back to back (the machine keeps /tmp for 30 s after a call):
 1. carry ["$S/whl", "$S/tok.tgz", "$S/b77"]:
    mkdir -p /tmp/site /tmp/b77 /tmp/tok /tmp/parts /tmp/m && python3 -m pip install -q --no-index --no-deps \\
      --no-compile --no-cache-dir --upgrade --target /tmp/site $S/whl/*.whl && cp $S/b77/* /tmp/b77/ && tar xzf $S/tok.tgz -C /tmp/tok
 2. one call per part, carry ["$S/q/part.NN"]: cp $S/q/part.NN /tmp/parts/
 3. the last part's call also joins, checks and starts the loops, from a copy of the tree:
    cat /tmp/parts/part.* > /tmp/m/model.gguf && sha256sum /tmp/m/model.gguf && rm -rf /tmp/repo && cp -r . /tmp/repo \\
      && rm -rf /tmp/repo/$S && cd /tmp/repo && LOOP_MINUTES=24 ... setsid nohup bash bench/gpu/loop.sh > /tmp/loop.out 2>&1 < /dev/null &
 4. poll (each day lands in /tmp/out/*.days.jsonl), then copy /tmp/out/* to \$OUT once /tmp/out/DONE exists.
EOF
