#!/usr/bin/env bash
# The GPU check: on a CUDA machine, install what is missing, run the CUDA tests, the whole
# test suite, and the speed benchmarks of LossVal and of the fast baselines on the GPU;
# write one markdown report (device_check.md) and the raw logs.
#
#   bash benchmarks/device_check.sh                # every step; writes $OUT or runs/device_check/
#   bash benchmarks/device_check.sh cuda_tests bench_lossval    # only these steps
#   LOSSVAL_ODV_DATA=DIR bash benchmarks/device_check.sh
#
# Missing Python packages come from wheels in .whl/ (benchmarks/device_wheels.sh makes
# them, and copies the offline datasets to .data/), installed into a private target
# directory, so the machine's own torch is kept. Each step has a time limit; the whole check stays under
# 8 minutes. It exits non-zero when a step fails, after running all of them.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
out="${OUT:-runs/device_check}"
mkdir -p "$out"
report="$out/device_check.md"
py="${PYTHON:-python3}"
export PYTHONUNBUFFERED=1
# absolute: tests run the CLI in other working directories
export LOSSVAL_ODV_DATA="${LOSSVAL_ODV_DATA:-$repo/.data}"

if [[ -d .whl ]] && compgen -G ".whl/*.whl" >/dev/null; then
    site=/tmp/lossval_odv_site
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$site" .whl/*.whl || { echo "device_check: wheel install failed"; exit 1; }
    export PYTHONPATH="$site:$repo${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
fi

if ! "$py" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())'; then
    echo "device_check: torch sees no CUDA device; this check is for a GPU machine" >&2
    exit 1
fi

failed=()
only=" $* "
# step NAME SECONDS FORMAT COMMAND...: run with a time limit, log to $out/NAME.log, append
# the output to the report (FORMAT md: as it is, the command prints markdown; text: fenced)
step() {
    local name=$1 limit=$2 format=$3
    shift 3
    [[ $only == "  " || $only == *" $name "* ]] || return 0
    local start=$SECONDS rc
    echo "== $name: $*"
    timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
    rc=$?
    tail -n 40 "$out/$name.log"
    {
        echo
        echo "## $name"
        echo
        echo "\`$*\` (exit $rc, $((SECONDS - start)) s, limit ${limit} s)"
        echo
        if [[ $format == md ]]; then
            grep -E '^(\||#|[A-Za-z])' "$out/$name.log" | grep -vE '^(WARNING|Warning)'
        else
            echo '```'
            grep -vE "PASSED|Warning|warner|^$" "$out/$name.log" | tail -n 60
            echo '```'
        fi
    } >>"$report"
    [[ $rc -eq 0 ]] || failed+=("$name (exit $rc)")
}

{
    echo "# Device check ($(date -u +'%F %H:%M UTC'))"
    echo
    echo '```'
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1
    "$py" -c 'import sys, torch; print("python", sys.version.split()[0], "| torch", torch.__version__, "| cuda", torch.version.cuda, "| available", torch.cuda.is_available())'
    echo "git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo '```'
} >"$report"

step cuda_tests 90 text "$py" -m pytest -q -p no:cacheprovider -m cuda
xdist=()
"$py" -c "import xdist" 2>/dev/null && xdist=(-n 8 --dist loadfile)
# the fast subset (no process pools, Ray clusters or long trainings), failures named as
# they happen (-v), so that a step stopped at its limit still says which tests failed
step test_suite 150 text "$py" -m pytest -v -p no:cacheprovider -m "not slow" -W ignore "${xdist[@]}"
step bench_baselines 150 text env TQDM_DISABLE=1 "$py" benchmarks/bench_baselines.py --device cuda --odv-budget 5 --max-models 1024 --markdown "$out/baselines_gpu.md"
step bench_shapley 150 md env TQDM_DISABLE=1 "$py" benchmarks/bench_shapley.py --device cuda --datasets pol kin8nm --permutations 2 --fast-permutations 100
step bench_lossval 45 md env TQDM_DISABLE=1 "$py" benchmarks/bench_lossval.py --device cuda --datasets pol --seeds 1
step bench_batched 45 text env TQDM_DISABLE=1 "$py" benchmarks/bench_batched.py --device cuda --sections throughput

{
    echo
    echo "## Summary"
    echo
    if [[ ${#failed[@]} -eq 0 ]]; then echo "All steps passed."; else printf -- '- failed: %s\n' "${failed[@]}"; fi
} >>"$report"
echo "device_check: report in $report"
[[ ${#failed[@]} -eq 0 ]]
