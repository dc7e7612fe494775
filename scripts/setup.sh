#!/usr/bin/env bash
# Create .venv and install lossval-odv into it, on a modern torch/numpy/pandas stack.
#
#   bash scripts/setup.sh          runtime install
#   bash scripts/setup.sh --dev    plus the test and lint tools
#
# The README's "Install" with pip, in order: torch, then the package (editable) with the
# dependencies pyproject.toml declares, then opendataval 1.3.0 with --no-deps. opendataval
# is not a declared dependency: its pins (torch~=2.1, numpy<1.26, pandas<2) cannot be met
# next to ours, and its torchvision, transformers and pykeops are never used
# (lossval_odv/compat.py handles the imports it then lacks). It comes last because after
# each install pip reports the unmet requirements of packages depending on what it
# changed; installed with --no-deps after everything else, opendataval's never show.
#
# torch: an installed torch is kept; otherwise a torch wheel found in pip's own
# find-links (PIP_FIND_LINKS, e.g. a local CPU build) is preferred over the PyPI
# default, which on Linux is the multi-GB CUDA build. Set LOSSVAL_ODV_TORCH to force a
# requirement (e.g. "torch==2.5.1").
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
[[ "${1:-}" == "--dev" ]] && extras="dev"
venv="${LOSSVAL_ODV_VENV:-.venv}"
python="${PYTHON:-python3}"

[[ -x "$venv/bin/python" ]] || "$python" -m venv "$venv"
py="$venv/bin/python"
pip() { "$py" -m pip install --disable-pip-version-check -q "$@"; }

if [[ -n "${LOSSVAL_ODV_TORCH:-}" ]]; then
  pip "$LOSSVAL_ODV_TORCH"
elif ! "$py" -c "import torch" 2>/dev/null; then
  if wheel=$(bash scripts/torch_wheel.sh "$py"); then
    version=$(basename "$wheel" | cut -d- -f2)
    echo "setup: torch==$version from pip's find-links"
    pip "torch==$version"
  else
    pip "torch>=2.2"
  fi
fi

pip -e ".${extras:+[$extras]}"
pip --no-deps "opendataval==1.3.0"
"$py" -c "import lossval_odv, opendataval, torch; print(f'setup: lossval-odv {lossval_odv.__version__} with torch {torch.__version__} ready in $venv')"
