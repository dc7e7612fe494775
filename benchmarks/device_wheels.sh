#!/usr/bin/env bash
# Prepare an offline GPU machine for benchmarks/device_check.sh: download, here, the wheels
# of the packages lossval-odv needs beyond a CUDA PyTorch image (torch, numpy, pandas,
# scipy, scikit-learn, matplotlib, tqdm, pyyaml, pytest are expected there) for that
# machine's Python, into .whl/, and copy the offline datasets into .data/.
#
#   bash benchmarks/device_wheels.sh [PYTHON_VERSION=3.12] [DATA_DIR=$LOSSVAL_ODV_DATA]
#
# The versions are the ones installed in this checkout's .venv, so both machines run the
# same code. device_check.sh installs .whl/ into a private directory and reads .data/.
set -euo pipefail
cd "$(dirname "$0")/.."
pyver="${1:-3.12}"
data="${2:-${LOSSVAL_ODV_DATA:-}}"
packages=(opendataval geomloss pandera torcheval pydantic pydantic_core annotated-types
    typing-inspection typeguard typing_extensions cleanlab termcolor)
pins=()
for name in "${packages[@]}"; do
    version=$(.venv/bin/python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")
    pins+=("$name==$version")
done
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64; do platforms+=(--platform "$p"); done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" \
    --implementation cp "${platforms[@]}" -d .whl "${pins[@]}"
echo "device_wheels: $(ls .whl | wc -l) wheels in .whl/"
if [[ -n "$data" ]]; then
    mkdir -p .data && cp "$data"/*.csv.gz .data/ && chmod -R u+w .data
    echo "device_wheels: datasets copied to .data/"
fi
