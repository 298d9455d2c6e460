#!/usr/bin/env bash
# One GPU session on a lent GPU machine (docs/performance.md): the packed-engine check
# and throughput (gpu_check.sh), two packs sharing one GPU, then a shortened Figure 1 protocol
# through `hwsearch launch` (Ray + Optuna from the carried .whl). Writes under $OUT.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1 RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=disabled
OUT=${OUT:-$PWD/device-out}; mkdir -p "$OUT"
DATA=.device/MNIST
start=$SECONDS

BUDGET=${CHECK_BUDGET:-240} OUT="$OUT" DATA_DIR=$DATA bash benchmarks/gpu_check.sh

echo "== sharing one GPU: one K=40 process alone, then two at once"
for n in 1 2; do
  for i in $(seq "$n"); do
    timeout 90 python3 benchmarks/throughput.py --device cuda --depth 50 --steps 300 --k 40 \
      --compile --skip-conventional --skip-single --data-dir $DATA --json "$OUT/share-$n-$i.json" > "$OUT/share-$n-$i.log" 2>&1 &
  done
  wait
  cat "$OUT"/share-"$n"-*.json 2>/dev/null; echo
done

if [ -d .whl ]; then
  echo "== protocol: depths 10,20,50,100 x plain,highway x 40 trials x ${EPOCHS:-2} epochs"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PYTHONPATH
  t0=$SECONDS
  timeout "${PROTOCOL_LIMIT:-240}" python3 -m hwsearch launch --storage "sqlite:///$OUT/protocol.db" \
    --dataset mnist --data-dir $DATA ${PROTOCOL_ARGS:---models plain,highway --depths 10,20,50,100} \
    --trials 40 --epochs "${EPOCHS:-2}" --gpus-per-trial 0.25 --cpus-per-trial 2 \
    --progress-every 15 2>&1 | tail -25
  echo "== protocol wall: $((SECONDS - t0))s"
fi
echo "== device_run total: $((SECONDS - start))s"
