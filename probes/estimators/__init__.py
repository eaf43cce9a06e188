"""Transferability estimators: for each source model and each dataset as target, the source
model's penultimate features and head probabilities on the target's images, scored (higher =
better predicted transfer). One module per estimator, each its score on fixed features and its
probe; the matrix holds distance = -score, rows = source models, columns = target data."""
