#!/usr/bin/env bash
# Print the newest torch wheel for an interpreter found in pip's find-links
# (PIP_FIND_LINKS, directories separated by spaces, e.g. a local CPU build); exit 1 when
# there is none. Used by setup.sh and CI so that neither fetches PyPI's CUDA build.
#
#   bash scripts/torch_wheel.sh PYTHON
set -euo pipefail
tag="cp$("$1" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
for dir in ${PIP_FIND_LINKS:-}; do
  dir="${dir#file://}"
  [[ -d "$dir" ]] || continue
  wheel=$(ls "$dir"/torch-*-"$tag"-*.whl 2>/dev/null | sort -V | tail -n 1 || true)
  if [[ -n "$wheel" ]]; then
    echo "$wheel"
    exit 0
  fi
done
exit 1
