#!/usr/bin/env bash
# The one script to run when a GPU machine is lent (see the device tool's README): GPU
# tests, then the GPU benchmarks, figures into $OUT. That machine has python3 with torch,
# nvcc and onnxruntime, but no TensorRT, pycuda, PyAV or sounddevice, and no registry.
#   run: bash benchmarks/gpu_check.sh    (OUT defaults to ./gpu_out)
set -uo pipefail
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
export CUDA_HOME=${CUDA_HOME:-/usr/local/cuda} AVVP_STREAM_HOME=${AVVP_STREAM_HOME:-/tmp/avvp_home}
python3 -m pip install --no-deps --no-build-isolation -e . >"$OUT/install.log" 2>&1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >"$OUT/gpu.txt"
python3 -c "import torch; print(torch.__version__, torch.version.cuda)" >>"$OUT/gpu.txt"
# Every engine against the torch reference (engine, precision, deviation, speed, verdict).
timeout 120 avvp-export verify --random-weights --device cuda 2>&1 | tee "$OUT/verify.txt" \
  || timeout 120 python3 -m avvp_stream.export.cli verify --random-weights --device cuda 2>&1 | tee "$OUT/verify.txt"
# GPU tests: the fused op's CUDA kernel (fp32 1e-5, fp16 1e-3, backward) and the backends.
# CUDA graphs of the folded head and of the three feature networks against eager.
python3 -m pytest -q -rs tests/test_fused_pool.py tests/test_backends.py tests/test_folded_head.py -k "not export_onnx" 2>&1 | tee "$OUT/tests.txt"
# Head latency per backend (eager, fused pooling, cuda-graph) and the pooling op at batch 1 and 65536.
python3 benchmarks/head_latency.py --device cuda --json "$OUT/head_latency_gpu.json" 2>&1 | tee "$OUT/head_latency_gpu.txt"
# The whole pipeline per snippet (features + head), eager fp32 vs fp16 channels-last vs CUDA graphs (no PyAV there: decoded noise).
python3 benchmarks/stream_latency.py --device cuda --synthetic --json "$OUT/stream_latency_gpu.json" 2>&1 | tee "$OUT/stream_latency_gpu.txt"
