#!/usr/bin/env bash
# A team MLflow tracking server: runs and metrics in PostgreSQL, artifacts in an S3-compatible
# object store (or any folder/URI MLflow accepts), proxied by the server so clients need no
# storage credentials. Configure with environment variables:
#   MLFLOW_BACKEND_STORE_URI     postgresql+psycopg://USER:PASSWORD@HOST:5432/mlflow   (required)
#   MLFLOW_ARTIFACTS_DESTINATION s3://BUCKET/mlflow  or a folder                       (required)
#   MLFLOW_S3_ENDPOINT_URL       http://minio.example:9000 for an S3-compatible store   (optional)
#   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY                                            (for s3://)
#   HOST (default 127.0.0.1; 0.0.0.0 to serve the team network), PORT (default 5000),
#   WORKERS (default 4)
set -euo pipefail
: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI, e.g. postgresql+psycopg://mlflow:secret@db:5432/mlflow}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION, e.g. s3://team-bucket/mlflow}"
exec mlflow server \
  --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
  --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
  --host "${HOST:-127.0.0.1}" --port "${PORT:-5000}" --workers "${WORKERS:-4}"
