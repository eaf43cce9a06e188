"""Datasets built deterministically from data shipped inside our dependencies (no network)."""
