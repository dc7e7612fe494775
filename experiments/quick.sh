#!/usr/bin/env bash
# The README's main job: configs/quick.yaml -> results/quick/ (the committed copy; the
# README command itself writes runs/quick/)
set -euo pipefail
cd "$(dirname "$0")/.."
export LOSSVAL_ODV_DATA="${LOSSVAL_ODV_DATA:-../shared/datasets}"
.venv/bin/lossval-odv run configs/quick.yaml --output-dir results/quick "$@"
