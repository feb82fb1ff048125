#!/usr/bin/env bash
# Run ON the lent GPU machine (device tool: command `bash benchmarks/gpu/run.sh`,
# carry [".gpu"], timeout_s 600): installs the carried wheels, then the check (<= 8 min).
set -euo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .gpu/whl/*.whl
export PYTHONPATH="$PWD/src:/tmp/site" PYTHONUNBUFFERED=1
out="${OUT:-gpu-out}"
mkdir -p "$out"
python3 benchmarks/gpu/gpu_check.py --out "$out" --project .gpu/openfield \
    --video .gpu/openfield/videos/m3v1mp4.mp4 --budget-s "${BUDGET_S:-420}" 2>&1 \
    | tee "$out/gpu_check.log"
