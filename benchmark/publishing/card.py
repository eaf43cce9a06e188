"""The model card of a published model (the folder's ``README.md``): what the model is, its
data (the dataset card), how it was trained, how it transfers, how to load and cite it. The
text is the Jinja template ``templates/model_card.md.j2``, rendered by huggingface_hub's
``ModelCard`` with its metadata (library, licence, tags) as the YAML header the Hub reads."""

from __future__ import annotations

import re
from pathlib import Path

from huggingface_hub import ModelCard, ModelCardData

from benchmark.publishing.trained import Trained

TEMPLATE = Path(__file__).with_name("templates") / "model_card.md.j2"


def model_card(trained: Trained, results: list[dict], distances: dict, alias: str) -> str:
    """The card of ``trained`` with its transfer ``results`` (rows of the results table),
    the probes' ``distances`` from its source, and the registry ``alias`` to load it by."""
    dataset = trained.target_card if trained.target else trained.card
    data = ModelCardData(library_name="timm", license=_license(dataset),
                         tags=["image-classification", "timm", "transfer-bench"])
    card = ModelCard.from_template(data, template_path=str(TEMPLATE), t=trained,
                                   name=trained.name, dataset=dataset, results=results,
                                   distances=distances, alias=alias)
    return str(card).rstrip("\n") + "\n"


def _license(card: dict) -> str:
    """The card's licence as a Hub licence id (its first word, e.g. ``cc-by-4.0``), else other."""
    first = str(card.get("license") or "other").split()[0].lower().strip(",;")
    return first if re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", first) else "other"

