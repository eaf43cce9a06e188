"""Writes what a user reads: the results and evaluation tables (CSV, markdown), the figures,
the self-contained HTML page, and the report run in MLflow."""
