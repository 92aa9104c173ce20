#!/usr/bin/env bash
# The paper profile's GPU measurements (issue 10, items 2 and 5), as one short script for a lent
# GPU machine: run in the repository root with the wheels of soundfile and librosa in .whl/ and an
# empty output folder in $OUT (default benchmarks/results/gpu). About five minutes on one H100 in
# eager mode (ASC_COMPILE=0, as the committed gpu_h100_* files were made); compiling each model
# adds 15 to 45 s per model and per process.
#   data_wait_bf16.txt / data_wait_fp32.txt  the real training loop per model: samples/s, share of
#                                            each step waiting for data, achieved share of peak
#   plan_paper.txt                           `reproduce --dry-run` for the whole paper recipe
#   host_memory.txt                          peak host memory against the number of clips
set -euo pipefail
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
python3 -m pip install --quiet --no-index --find-links .whl soundfile librosa 2>&1 | tail -2 || true
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
{ date -u; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } > "$out/machine.txt"
peak=${PEAK_TFLOPS:-989}  # dense bf16 TFLOP/s of an H100 SXM
python3 benchmarks/data_wait.py --profile paper --device cuda --steps 20 --repeats 3 --peak-tflops "$peak" \
  > "$out/data_wait_bf16.txt"
python3 benchmarks/data_wait.py --profile paper --device cuda --steps 20 --repeats 3 --peak-tflops "$peak" \
  --precision fp32 > "$out/data_wait_fp32.txt"
python3 -m asclib reproduce --profile paper --data-dir /nonexistent --dry-run > "$out/plan_paper.txt"
python3 benchmarks/host_memory.py --clips 1000 10000 --steps 20 > "$out/host_memory.txt"
