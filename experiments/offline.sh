#!/usr/bin/env bash
# The larger committed run: configs/offline.yaml -> results/offline/ (resumable).
set -euo pipefail
cd "$(dirname "$0")/.."
export LOSSVAL_ODV_DATA="${LOSSVAL_ODV_DATA:-../shared/datasets}"
# the authors' published results, put side by side in the report
REFERENCE="${LOSSVAL_ODV_REFERENCE:-../shared/reference/lossval-paper}"
.venv/bin/lossval-odv run configs/offline.yaml --reference "$REFERENCE" "$@"
