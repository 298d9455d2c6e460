#!/usr/bin/env bash
# The Figure 1 grid on one GPU, for as many epochs as fit (the goal: 50 epochs in at most 10
# minutes on one H100), and each depth's packs against the GPU's arithmetic limit (the goal:
# 30% or more at every depth). One device session, about 9 minutes; run from the repository
# root on the GPU machine, results under $OUT:
#
#   OUT=/some/dir bash benchmarks/gpu_grid.sh
#
# Needs there: python3 with torch; MNIST's IDX files in $DATA_DIR (default .device/MNIST);
# for the grid, Ray, Optuna and their dependencies as wheels in .whl/ (installed into
# /tmp/site; without them the grid steps are skipped). Steps, each under a timeout taken from
# what is left of $BUDGET, so one failing step cannot eat the others' time:
#   1. correctness: cuda_check.py, the hand-written pack step on CUDA against single runs
#      and its CUDA graph against eager (benchmarks/cuda_check.py);
#   2. packs per depth (10, 20, 50, 100): throughput.py --compile (CUDA graphs), K = 40 (a
#      study's trials, the grid's pack) and 160, with the share of the arithmetic limit
#      -> $OUT/pack-d<D>.json;
#   3. the grid for one epoch (grid.py --gpu: start-up, time line, exact counts)
#      -> $OUT/grid-1.json;
#   4. the grid for as many epochs as the rest of the budget fits by step 3's rate, at most 50
#      -> $OUT/grid-<E>.json.
# Everything is also logged to $OUT/gpu_grid.log. Exit status: that of the first failing step.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu-grid-out}
DATA_DIR=${DATA_DIR:-.device/MNIST}
BUDGET=${BUDGET:-540}  # seconds for all steps together
GRID_ARGS=${GRID_ARGS:---gpus-per-trial 0.125 --cpus-per-trial 2}  # all 8 packs at once
mkdir -p "$OUT"

status=0
step() {  # step NAME CAP_SECONDS COMMAND...: run under min(CAP, what is left of the budget)
    local name=$1 cap=$2 left=$((BUDGET - SECONDS))
    shift 2
    if ((left < 20)); then
        echo "== $name: skipped, ${left}s of the budget left"
        return
    fi
    local limit=$((cap < left ? cap : left)) start=$SECONDS rc
    echo "== $name (limit ${limit}s)"
    echo "\$ $*"
    timeout --kill-after=10 "$limit" "$@"
    rc=$?
    echo "== $name: exit $rc after $((SECONDS - start))s"
    if ((rc != 0 && status == 0)); then status=$rc; fi
}

epochs_that_fit() {  # from grid-1.json: the epochs the budget left fits, 1..50
    "$PYTHON" - "$OUT/grid-1.json" "$((BUDGET - SECONDS - 30))" <<'EOF'
import json, sys
run, left = json.load(open(sys.argv[1])), float(sys.argv[2])
line = run["timeline_seconds"]
start = line.get("first_epoch_at", 0.0)  # start-up, roughly: paid once whatever the epochs
per_epoch = max(run["wall_seconds"] - start, 1.0)
print(max(1, min(50, int((left - start) / per_epoch))))
EOF
}

main() {
    echo "== environment"
    nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not found"
    "$PYTHON" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
    "cuda", torch.version.cuda, "device", torch.cuda.get_device_name() if torch.cuda.is_available()
    else "NONE")' || return 1
    git log --oneline -1 2>/dev/null || true

    step "correctness: packed vs single, cudagraph vs eager" 90 \
        "$PYTHON" benchmarks/cuda_check.py --data-dir "$DATA_DIR" --modes cudagraph
    for depth in 10 20 50 100; do
        step "packs at depth $depth (CUDA graphs)" 45 \
            "$PYTHON" benchmarks/throughput.py --device cuda --depth "$depth" --steps 100 \
            --repeats 2 --k 40 160 --compile --skip-conventional --skip-single \
            --data-dir "$DATA_DIR" --json "$OUT/pack-d$depth.json"
    done

    if [[ -d .whl ]]; then
        "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PYTHONPATH
        step "grid, one epoch" 150 \
            "$PYTHON" benchmarks/grid.py --gpu --data-dir "$DATA_DIR" --epochs 1 \
            --json "$OUT/grid-1.json" -- $GRID_ARGS
        if [[ -f $OUT/grid-1.json ]]; then
            local epochs
            epochs=$(epochs_that_fit)
            step "grid, $epochs epochs" $((BUDGET - SECONDS)) \
                "$PYTHON" benchmarks/grid.py --gpu --data-dir "$DATA_DIR" --epochs "$epochs" \
                --json "$OUT/grid-$epochs.json" -- $GRID_ARGS
        fi
    else
        echo "== grid: skipped, no .whl/ with Ray and Optuna to install"
    fi

    echo "== results (${SECONDS}s in all)"
    for f in "$OUT"/pack-d*.json "$OUT"/grid-*.json; do
        [[ -f $f ]] && { echo "-- $f"; cat "$f"; }
    done
    echo "== gpu_grid: exit $status"
    return "$status"
}

main 2>&1 | tee "$OUT/gpu_grid.log"
exit "${PIPESTATUS[0]}"
