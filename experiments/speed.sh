#!/usr/bin/env bash
# Speed benchmarks -> results/speed/. Pass --device cuda on a GPU machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOSSVAL_ODV_DATA="${LOSSVAL_ODV_DATA:-../shared/datasets}"
mkdir -p results/speed
.venv/bin/python benchmarks/bench_lossval.py --seeds 3 "$@" | tee results/speed/single_run.md
