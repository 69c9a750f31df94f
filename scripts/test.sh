#!/usr/bin/env bash
# Runs the test suite (the fast tests; `-m slow` adds the real-weights ones).
set -uo pipefail
cd "$(dirname "$0")/.."
python -m pytest -q "$@"
rc=$?
if [ $rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit $rc
