#!/usr/bin/env bash
# Every paper baseline at its budget next to LossVal (resumable, in pieces):
#   bash experiments/baselines.sh            configs/baselines.yaml -> results/baselines/
#                                            (faithful to the protocol)
#   bash experiments/baselines.sh corrected  configs/corrected.yaml -> results/corrected/
#                                            (classification, a baselines' model that learns)
# On a 2-core CPU Data Shapley, Beta Shapley and DVRL (2000 RL epochs) take hours a cell,
# so by default this computes the other methods (CPU_PIECE); METHODS= (empty) computes
# every method, e.g. on a GPU machine. The report covers the whole config and counts the
# cells still missing. Further arguments go to `lossval-odv run`.
set -euo pipefail
cd "$(dirname "$0")/.."
NAME=baselines
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then NAME="$1"; shift; fi
CONFIG="configs/$NAME.yaml"
export LOSSVAL_ODV_DATA="${LOSSVAL_ODV_DATA:-../shared/datasets}"
REFERENCE="${LOSSVAL_ODV_REFERENCE:-../shared/reference/lossval-paper}"
CPU_PIECE=lossval_5,lossval_30,knn_shapley,lava,random,data_oob,ame,data_banzhaf,influence_subsample,leave_one_out
METHODS="${METHODS-$CPU_PIECE}"
piece=()
if [ -n "$METHODS" ]; then piece=(--methods "$METHODS"); fi
.venv/bin/lossval-odv run "$CONFIG" --reference "$REFERENCE" "${piece[@]}" "$@"
