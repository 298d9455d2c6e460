#!/usr/bin/env bash
# GPU check of the packed engine and its fast paths, in one go (about 2-3 minutes; capped at
# ~5.5). Run from the repository root on the GPU box; needs python3 with torch (no Ray, Optuna
# or `pip install -e .`: PYTHONPATH is set to the repo root):
#
#   OUT=/some/dir bash benchmarks/gpu_check.sh      # OUT defaults to ./gpu-check-out
#
# Data: MNIST's raw IDX .gz files in $DATA_DIR (default .device/MNIST, or its raw/); synthetic
# data of the same shape, with a notice, when they are missing. Steps, each under a timeout
# taken from what is left of the budget, so a failing step cannot eat the others' time:
#   1. cuda_check.py: packed vs single on cuda (K=4, depth 10, float32 loss curves), and the
#      CUDA-graph engine vs eager;
#   2. throughput.py --compile (CUDA graphs), depth 50, 200 steps, K = 8 40 160 640
#      -> $OUT/<gpu>.json (<gpu>: h100, h200, ... from the device's name);
#   3. throughput.py eager, K = 40, and the unmodified PackedEngine beside it (--stock)
#      -> $OUT/<gpu>-eager.json;
#   4. if time is left: cuda_check.py for the inductor + CUDA graph mode.
# Everything is also logged to $OUT/gpu_check.log. Exit status: that of the first failing step.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
OUT=${OUT:-$PWD/gpu-check-out}
DATA_DIR=${DATA_DIR:-.device/MNIST}
BUDGET=${BUDGET:-330}  # seconds for all steps together
mkdir -p "$OUT"
# Result files are named after the GPU that made them (h100, h200, ...; "gpu" when unknown).
GPU=$("$PYTHON" -c 'import re, torch
name = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
m = re.search(r"\b([A-Z]\d{2,4})\b", name)
print(m.group(1).lower() if m else "gpu")' 2>/dev/null || echo gpu)

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

main() {
    echo "== environment"
    nvidia-smi -L 2>/dev/null || echo "nvidia-smi: not found"
    "$PYTHON" -c 'import sys, torch; print("python", sys.version.split()[0], "torch", torch.__version__,
    "cuda", torch.version.cuda, "device", torch.cuda.get_device_name() if torch.cuda.is_available()
    else "NONE")' || return 1
    git log --oneline -1 2>/dev/null || true

    step "correctness: packed vs single, cudagraph vs eager" 120 \
        "$PYTHON" benchmarks/cuda_check.py --data-dir "$DATA_DIR" --modes cudagraph
    step "throughput, compiled (CUDA graphs)" 180 \
        "$PYTHON" benchmarks/throughput.py --device cuda --depth 50 --steps 200 --k 8 40 160 640 \
        --compile --data-dir "$DATA_DIR" --json "$OUT/$GPU.json"
    step "throughput, eager, K=40 (beside the CUDA graph figures)" 90 \
        "$PYTHON" benchmarks/throughput.py --device cuda --depth 50 --steps 200 --k 40 --stock \
        --data-dir "$DATA_DIR" --json "$OUT/$GPU-eager.json"
    step "optional: inductor + CUDA graph vs eager" 120 \
        "$PYTHON" benchmarks/cuda_check.py --data-dir "$DATA_DIR" --skip-single \
        --modes inductor-cudagraph

    echo "== results (${SECONDS}s in all)"
    for f in "$OUT/$GPU.json" "$OUT/$GPU-eager.json"; do
        [[ -f $f ]] && { echo "-- $f"; cat "$f"; }
    done
    echo "== gpu_check: exit $status"
    return "$status"
}

main 2>&1 | tee "$OUT/gpu_check.log"
exit "${PIPESTATUS[0]}"
