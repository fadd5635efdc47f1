#!/usr/bin/env bash
# Everything the GPU verification needs, in one call on a GPU node (< 8 minutes on one
# H200): the CUDA unit and halo tests, then bench/bench_gpu.py. Results under $OUT
# (default bench/results/gpu): gpu.json, logs, nvidia-smi and the torch build.
#   bash bench/gpu_check.sh            # on the GPU node, from the repository root
#   bash bench/gpu_check.sh --cpu      # dry run without a GPU (CPU substitutes CUDA)
set -u
OUT=${OUT:-bench/results/gpu}
mkdir -p "$OUT"
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
export OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
start=$(date +%s)
{ nvidia-smi || echo "no nvidia-smi"; } > "$OUT/nvidia-smi.txt" 2>&1
"$PY" -c "import torch, sys; print(sys.version); print('torch', torch.__version__, 'cuda',
torch.version.cuda, 'available', torch.cuda.is_available(), 'devices', torch.cuda.device_count())" \
  > "$OUT/torch.txt" 2>&1
timeout 90 "$PY" -m pytest -p no:cacheprovider -q -m gpu tests/unit/ml/test_ml_gpu.py \
  > "$OUT/pytest_unit_gpu.txt" 2>&1
echo "unit gpu tests: exit $?" | tee -a "$OUT/status.txt"
timeout 90 mpirun --oversubscribe --bind-to none -n 2 "$PY" tests/parallel/run_pytest.py \
  tests/parallel/test_halo_mpi.py -q -m gpu > "$OUT/pytest_halo_gpu.txt" 2>&1
echo "halo gpu tests (2 ranks): exit $?" | tee -a "$OUT/status.txt"
timeout 330 "$PY" bench/bench_gpu.py --out "$OUT/gpu.json" "$@" 2>&1 | tee "$OUT/bench_gpu.log"
echo "bench_gpu: exit ${PIPESTATUS[0]}; total $(( $(date +%s) - start )) s" | tee -a "$OUT/status.txt"
