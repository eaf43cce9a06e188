"""Dataset-similarity and transferability probes (Task2Vec, SimEx, expert, estimators)."""
