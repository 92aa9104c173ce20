#!/usr/bin/env bash
# The paper profile's GPU measurements (issue 10, items 2 and 5), as one short script for a lent
# GPU machine: run in the repository root with the wheels of soundfile and librosa in .whl/ and an
# empty output folder in $OUT (default benchmarks/results/gpu). Name the steps to run (default:
# all, about ten minutes on one H100):
#   machine        machine.txt: the card, its driver and clocks, torch
#   data_wait      data_wait_bf16.txt / data_wait_fp32.txt: the real training loop per model
#                  (samples/s, share of each step waiting for data, achieved share of peak);
#                  compiled unless ASC_COMPILE=0 (the first committed files were eager);
#                  PRECISIONS=bf16 measures bf16 alone
#   plan           plan_paper.txt: `reproduce --dry-run` for the whole paper recipe
#   host_memory    host_memory.txt: peak host memory against the number of clips
#   side_by_side   side_by_side.txt (and side_by_side_mps.txt where the CUDA multi-process
#                  service exists): several trainings at once on the one card
set -euo pipefail
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
steps=${*:-machine data_wait plan host_memory side_by_side}
python3 -m pip install --quiet --no-index --find-links .whl soundfile librosa 2>&1 | tail -2 || true
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
peak=${PEAK_TFLOPS:-989}  # dense bf16 TFLOP/s of an H100 SXM
side_by_side() { python3 benchmarks/side_by_side.py --model resnet-10c fcnn-10c --processes 1 2 3; }
for step in $steps; do
  echo "$(date -u +%T) $step"
  case $step in
    machine)
      { date -u; nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,power.limit --format=csv
        python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"; } > "$out/machine.txt" ;;
    data_wait)
      for precision in ${PRECISIONS:-bf16 fp32}; do
        python3 benchmarks/data_wait.py --profile paper --device cuda --steps 20 --repeats 3 --peak-tflops "$peak" \
          --precision "$precision" > "$out/data_wait_$precision.txt"
      done ;;
    plan)
      python3 -m asclib reproduce --profile paper --data-dir /nonexistent --dry-run > "$out/plan_paper.txt" ;;
    host_memory)
      python3 benchmarks/host_memory.py --clips 1000 10000 --steps 20 > "$out/host_memory.txt" ;;
    side_by_side)
      side_by_side > "$out/side_by_side.txt"
      if command -v nvidia-cuda-mps-control > /dev/null; then
        export CUDA_MPS_PIPE_DIRECTORY=$(mktemp -d) CUDA_MPS_LOG_DIRECTORY=$(mktemp -d)
        trap 'echo quit | nvidia-cuda-mps-control || true' EXIT
        nvidia-cuda-mps-control -d
        { echo "under the CUDA multi-process service (MPS)"
          side_by_side; } > "$out/side_by_side_mps.txt"
        echo quit | nvidia-cuda-mps-control; trap - EXIT
      fi ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
echo "$(date -u +%T) done"
