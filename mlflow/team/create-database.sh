#!/usr/bin/env bash
# Create the PostgreSQL role and database the team server uses (run once, as a PostgreSQL
# superuser, e.g. `sudo -u postgres mlflow/team/create-database.sh`).
#   DB_NAME (default mlflow), DB_USER (default mlflow), DB_PASSWORD (required),
#   PGHOST / PGPORT as for psql.
set -euo pipefail
: "${DB_PASSWORD:?set DB_PASSWORD for the new role}"
name="${DB_NAME:-mlflow}"
user="${DB_USER:-mlflow}"
psql -v ON_ERROR_STOP=1 -v user="$user" -v pass="$DB_PASSWORD" -v name="$name" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'user', :'pass')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'name', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \gexec
SQL
echo "database '$name' owned by '$user' is ready"
