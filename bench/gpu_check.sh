#!/usr/bin/env bash
# The GPU checks in one short run (at most 5 minutes: each check has a time limit): the bf16 training step of both
# libraries, eager and under torch.compile; greedy and 4-beam generation at batch 1 and 64; notebook 08 under nbval
# when it is installed (the notebook itself runs on the CPU: this checks it on the GPU machine's software). Every log goes to the folder given as the first argument, else $OUT, else bench_gpu_logs/.
#
#     bash bench/gpu_check.sh /tmp/gpu_logs      # then read the SUMMARY lines: grep SUMMARY /tmp/gpu_logs/*.log
set -uo pipefail
cd "$(dirname "$0")/.."
LOGS=${1:-${OUT:-bench_gpu_logs}}
mkdir -p "$LOGS" && LOGS=$(cd "$LOGS" && pwd)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"   # this checkout's package, whatever is installed

run() {  # run NAME SECONDS COMMAND...: one check, its output teed to LOGS/NAME.log, never longer than SECONDS
    local name=$1 seconds=$2
    shift 2
    echo "== $name: $*" | tee "$LOGS/$name.log"
    timeout "$seconds" "$@" 2>&1 | tee -a "$LOGS/$name.log"
    echo "== $name: exit ${PIPESTATUS[0]}" | tee -a "$LOGS/$name.log"
}

{ nvidia-smi; python -c "import torch, transformers; print(torch.__version__, transformers.__version__)"; } \
    > "$LOGS/environment.log" 2>&1
run train_step 200 python bench/forward_backward.py --device cuda --compile --batch 64 --src-len 128 \
    --tgt-len 128 --steps 10 --warmup 2 --rounds 1
BATCHES=1,64 BEAMS=1,4 CACHE=1 REPEATS=3 run generate 70 python -m bench.generate --device cuda
if python -c "import nbval" 2>/dev/null; then
    CI=true run notebook_08 30 python -m pytest -q notebooks/08_making_it_fast.ipynb
fi
grep -h SUMMARY "$LOGS"/*.log | tee "$LOGS/summary.txt"
