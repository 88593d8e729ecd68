#!/usr/bin/env bash
# The GPU check: parity with HF GptOss on CUDA, step and real-loop tokens/s and MFU vs HF, determinism
# (reruns and SIGTERM resume under train.deterministic, and its cost), long-context tokens/s and memory
# at 4k..131k. At most ~8 minutes on one H100/H200. The last line of output is the JSON summary, also
# written to bench/out/gpu_check.json. Without CUDA it exits 2 ("ok": false); --cpu-selftest runs the
# parts on CPU with tiny shapes (to test the script). See bench/gpu_check.py for the parts.
#   bash bench/gpu_check.sh [--parts parity,step,loop,determinism,long_context] [--run-dir DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
exec "$PY" bench/gpu_check.py "$@"
