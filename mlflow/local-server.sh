#!/usr/bin/env bash
# Start an MLflow tracking server on transfer-bench's local store, on 127.0.0.1 only.
# Store: sqlite:///$BENCH_HOME/mlflow.db, artifacts in $BENCH_HOME/mlartifacts (the same store
# `bench` writes to when MLFLOW_TRACKING_URI is unset). PORT defaults to 5000.
set -euo pipefail
home="${BENCH_HOME:-$HOME/.cache/transfer-bench}"
home="$(mkdir -p "$home" && cd "$home" && pwd)"
port="${PORT:-5000}"
exec mlflow server \
  --backend-store-uri "sqlite:///$home/mlflow.db" \
  --artifacts-destination "$home/mlartifacts" \
  --host 127.0.0.1 --port "$port"
