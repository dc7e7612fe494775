#!/usr/bin/env bash
# Speed benchmarks -> results/speed/ (see results/speed/README.md). Pass --device cuda on
# a GPU machine. About 8 minutes on 2 CPU cores; run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export LOSSVAL_ODV_DATA="${LOSSVAL_ODV_DATA:-../shared/datasets}"
mkdir -p results/speed
{
    echo "# python benchmarks/bench_lossval.py --seeds 3 $*  ($(date -u +%F))"
    echo
    .venv/bin/python benchmarks/bench_lossval.py --seeds 3 "$@"
} | tee results/speed/single_run.md
{
    echo "# python benchmarks/bench_batched.py --grid-real $*  ($(date -u +%F))"
    echo
    echo '```'
    # torch's OpenMP threads spin-wait, which collapses under load from other processes
    OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}" .venv/bin/python benchmarks/bench_batched.py --grid-real "$@"
    echo '```'
} | tee results/speed/batched.md
