"""Turns finished runs into answers: the results tables read back from MLflow, how well each
probe, estimator and baseline ranks the sources (with the noise ceiling of the ground truth),
the distribution-shift statistics, and the recommendation of sources for a target."""
