"""JSON-ready views of the catalog and the store, as `bench datasets` prints them."""

from __future__ import annotations

from typing import Any

from registry.catalog import Catalog
from registry.errors import UnknownNameError
from registry.names import unknown_name_message
from registry.paths import BenchPaths
from registry.store import DatasetRecord, RegistryStore


def list_datasets(catalog: Catalog, paths: BenchPaths) -> list[dict[str, Any]]:
    """Every catalog dataset plus every registered user dataset, one summary each."""
    records = {r.name: r for r in RegistryStore(paths.registry_db).all()}
    rows = []
    for name in sorted(set(catalog.cards) | set(records)):
        card = catalog.cards.get(name)
        rec = records.get(name)
        src = card.model_dump(mode="json") if card else rec.card
        rows.append({
            "name": name, "aliases": list(src.get("aliases", [])), "origin": src["origin"],
            "modality": src["modality"], "task": src["task"], "classes": len(src["classes"]),
            "obtain": src["obtain"]["kind"], "in_catalog": card is not None,
            "registered": rec is not None,
            "n_samples": rec.n_samples if rec else src.get("n_samples"),
        })
    return rows


def show_dataset(name: str, catalog: Catalog, paths: BenchPaths) -> dict[str, Any]:
    """Card, local counts per class, meta-features and cache files of one dataset."""
    store = RegistryStore(paths.registry_db)
    key = name.strip().lower()
    if key in catalog:
        key = catalog.canonical(key)
    record = store.get(key)
    if record is None and key not in catalog.cards:
        known = sorted([*catalog.cards, *catalog.aliases, *store.names()])
        raise UnknownNameError(unknown_name_message("dataset", name, known),
                               "Run `bench datasets` to list what is known.")
    if record is not None:
        return _registered_view(record)
    card = catalog.cards[key].model_dump(mode="json")
    return {"name": key, "registered": False, "n_samples": card.get("n_samples"),
            "classes": card["classes"], "class_counts": None, "meta_features": {},
            "expert": card.get("expert"), "card": card, "cache_files": [], "root": None}


def _registered_view(rec: DatasetRecord) -> dict[str, Any]:
    return {
        "name": rec.name, "registered": True, "n_samples": rec.n_samples,
        "classes": rec.classes, "class_counts": rec.class_counts,
        "meta_features": rec.meta_features, "expert": rec.card.get("expert"), "card": rec.card,
        "root": rec.root, "fingerprint": rec.fingerprint, "registered_at": rec.registered_at,
        "cache_dir": rec.cache_dir,
        "cache_files": [{"role": f.role, "path": f.path, "sha256": f.sha256,
                         "shape": list(f.shape) if f.shape else None} for f in rec.files],
    }


def known_datasets(catalog: Catalog, paths: BenchPaths) -> set[str]:
    """Every dataset name a command may be given: the catalog's cards and what is registered
    here (a new dataset registered from a folder has no card)."""
    return set(catalog.cards) | set(RegistryStore(paths.registry_db).names())


def dataset_sizes(paths: BenchPaths, catalog: Catalog | None = None) -> dict[str, int]:
    """Images per dataset: registered datasets as registered, the rest as their cards say
    (weight-only sources such as ImageNet), for the static-size baseline."""
    catalog = catalog or Catalog.load()
    sizes = {name: card.n_samples for name, card in catalog.cards.items() if card.n_samples}
    if paths.registry_db.is_file():
        store = RegistryStore(paths.registry_db)
        for name in store.names():
            rec = store.get(name)
            if rec is not None:
                sizes[name] = rec.n_samples
    return sizes
