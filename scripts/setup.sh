#!/usr/bin/env bash
# Create .venv and install lossval-odv into it, on a modern torch/numpy/pandas stack.
#
#   bash scripts/setup.sh          runtime install
#   bash scripts/setup.sh --dev    plus the test and lint tools
#
# opendataval 1.3.0 pins torch~=2.1, numpy<1.26, pandas<2 and pulls torchvision,
# transformers and pykeops. pip has no override mechanism, so we install it with
# --no-deps and install the dependencies declared in our pyproject.toml instead
# (lossval_odv/compat.py handles the imports it then lacks). uv users get the same
# through [tool.uv] override-dependencies in pyproject.toml.
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
  tag="cp$("$py" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
  local_wheel=""
  for dir in ${PIP_FIND_LINKS:-}; do
    dir="${dir#file://}"
    [[ -d "$dir" ]] || continue
    local_wheel=$(ls "$dir"/torch-*-"$tag"-*.whl 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n "$local_wheel" ]] && break
  done
  if [[ -n "$local_wheel" ]]; then
    version=$(basename "$local_wheel" | cut -d- -f2)
    echo "setup: torch==$version from pip's find-links"
    pip "torch==$version"
  else
    pip "torch>=2.2"
  fi
fi

pip --no-deps "opendataval==1.3.0"
mapfile -t deps < <("$py" - "$extras" <<'PY'
import sys, tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = [d for d in project["dependencies"] if not d.startswith("opendataval")]
for extra in filter(None, sys.argv[1].split(",")):
    deps += project["optional-dependencies"][extra]
print("\n".join(deps))
PY
)
pip "${deps[@]}"
pip --no-deps -e .
"$py" -c "import lossval_odv, torch; print(f'setup: lossval-odv {lossval_odv.__version__} with torch {torch.__version__} ready in $venv')"
