"""Lineage of derived datasets: whether a shifted test set holds a target's own images (the
same samples, changed in place), so that each model must be tested on the counterparts of its
own test images only (Recht et al.'s (2019) paired shifts)."""

from __future__ import annotations

from registry.errors import BenchError
from registry.store import DatasetRecord


def paired(shifted: DatasetRecord, target: DatasetRecord) -> bool:
    """True when ``shifted`` holds the target's own images sample for sample, in the same
    order, so a model must be tested on the counterparts of its fold's test images only: the
    same dataset, derived from the target, the target's parent, or from the same parent
    (mnist-5k-rotated-background-image and mnist-5k-rotated both come from mnist-5k). False
    for a dataset of other images (a second site): it is tested whole.

    Raises :class:`BenchError` when the lineage says the two share images and they cannot be
    matched sample for sample (other sizes, or a subset on the way): testing on all of it
    would test models on their own training images."""
    link = _relation(shifted, target)
    if link is None:
        return False
    relation, steps = link
    subsets = [r.name for r in steps if "subset" in _derivation(r).get("method", "")]
    if shifted.n_samples != target.n_samples or subsets:
        why = (f"it has {shifted.n_samples} samples and the target {target.n_samples}"
               if shifted.n_samples != target.n_samples else
               f"'{subsets[0]}' is a subset of its parent")
        raise BenchError(
            f"Shifted test set '{shifted.name}' of target '{target.name}' shares its images "
            f"with the target ({relation}), but {why}: the counterparts of a fold's test images "
            "cannot be found, and testing on all of it would test each model on its own "
            "training images.",
            "Name a variant that changes each target image in place (same samples, same "
            "order), a dataset of other images (a second site), or a transform.")
    return True


def _derivation(record: DatasetRecord) -> dict:
    return record.card.get("derived_from") or {}


def _relation(shifted: DatasetRecord, target: DatasetRecord
              ) -> tuple[str, list[DatasetRecord]] | None:
    """How the lineage (``derived_from.parent``) links the two, and the records whose
    derivation makes the link; None when it does not link them."""
    up_s, up_t = _derivation(shifted).get("parent"), _derivation(target).get("parent")
    if shifted.name == target.name:
        return "the same dataset", []
    if up_s == target.name:
        return f"derived from '{target.name}'", [shifted]
    if up_t == shifted.name:
        return f"the target is derived from '{shifted.name}'", [target]
    if up_s is not None and up_s == up_t:
        return f"both derived from '{up_s}'", [shifted, target]
    return None

