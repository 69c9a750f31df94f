#!/usr/bin/env bash
# The main job on the embedded defaults, from a fresh machine:
# set up .venv (CPU torch), then import the sample history into SQLite (.router/router.db),
# train the baseline, route the sample day, fill the review queue, print the reports.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/router ]; then
  python3 -m venv .venv
  .venv/bin/pip install -q torch==2.13.0
  .venv/bin/pip install -q -e .
fi
. .venv/bin/activate
router import data/sample/history.jsonl
router train
router classify data/sample/day.jsonl -o .router/day.routed.jsonl
router models
echo "routed tickets: .router/day.routed.jsonl; review queue: router label; dashboards: router dashboard"
