#!/usr/bin/env bash
# The GPU check (benchmarks/gpu_check.py): the model benchmark at every size in bf16 with torch.compile, then a
# short sweep on the bundled corpus with fractional GPU shares; one JSON and printed tables. At most ~8 minutes
# on one H100, no network (the project and its dependencies installed first, e.g. `pip install -e ".[test]"`).
#   bash benchmarks/gpu_check.sh                              on the GPU machine
#   bash benchmarks/gpu_check.sh --device cpu --data DIR      a dry run of the same steps at CPU scale
set -euo pipefail
cd "$(dirname "$0")/.."
exec timeout 500 "${PYTHON:-python}" benchmarks/gpu_check.py "$@"
