"""A registered dataset as an OpenML dataset, built with openml-python.

``export_dataset`` builds the ``OpenMLDataset`` (name, description with provenance and our
meta-features, creator, licence, citation, original URL, default target ``class``) from the
decoded cache: one integer column per pixel (``pixel1`` ..., channel-major as OpenML's image
sets are flattened) and the nominal class. openml-python checks the ARFF it serialises; the
folder holds ``description.xml`` (what OpenML's upload takes), ``dataset.arff`` and
``qualities.json`` (our meta-features, OpenML's vocabulary). It is written to a temporary
folder and renamed into place. ``publish_export`` uploads it with the user's API key.
``build_dataset``, ``creator`` and ``write_files`` serve ``bench results publish --openml`` too.
"""

from __future__ import annotations

from urllib.parse import urlparse
import socket

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from registry.errors import BenchError, RegistryError
from registry.files import atomic_folder
from registry.paths import BenchPaths
from registry.store import DatasetRecord, RegistryStore

MAX_CELLS = 50_000_000  # pixels x images: beyond this ARFF is the wrong vehicle


class OpenMLExportError(BenchError):
    """A dataset that cannot be exported or published to OpenML."""


@dataclass(frozen=True)
class Export:
    name: str
    folder: Path
    n_instances: int
    n_features: int
    dataset: Any  # openml.datasets.OpenMLDataset
    openml_id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "folder": str(self.folder),
                "files": sorted(p.name for p in self.folder.iterdir()),
                "n_instances": self.n_instances, "n_features": self.n_features,
                "openml_id": self.openml_id}


def export_dataset(name: str, paths: BenchPaths, out: Path | None = None,
                   size: tuple[int, int] | None = None) -> Export:
    """Build and write the OpenML description and data of the registered ``name``."""
    rec = RegistryStore(paths.registry_db).get(name)
    if rec is None:
        raise RegistryError(f"'{name}' is not registered.", f"Run `bench add-dataset {name}` first.")
    if rec.card.get("task") == "multilabel":
        raise OpenMLExportError(f"'{name}' is multilabel; OpenML datasets have one target.",
                                "Export a single-label dataset.")
    images, labels = _cache(rec, size)
    n, c, h, w = images.shape
    if n * c * h * w > MAX_CELLS:
        raise OpenMLExportError(f"'{name}' at {h}x{w} is {n * c * h * w:,} pixel values, too "
                                "many for an ARFF upload.", "Export a smaller cached size "
                                "(--size 28x28) or upload the files to a data repository.")
    dataset = _openml_dataset(rec, images, labels)
    folder = out or paths.home / "openml-export" / name
    _write(dataset, rec, folder)
    return Export(name, folder, n, c * h * w, dataset)


def _cache(rec: DatasetRecord, size: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    files = {tuple(f.shape[2:]): f.path for f in rec.files if f.role.startswith("images ")}
    if size is None:
        size = min(files, key=lambda s: s[0] * s[1])
    if tuple(size) not in files:
        raise OpenMLExportError(f"'{rec.name}' is cached at "
                                f"{', '.join(f'{a}x{b}' for a, b in files)}, not {size[0]}x{size[1]}.",
                                f"Use one of those, or `bench add-dataset {rec.name} --force "
                                f"--size {size[0]}x{size[1]}`.")
    labels = np.load(rec.file_path("labels"))
    return np.load(files[tuple(size)]), labels


def _openml_dataset(rec: DatasetRecord, images: np.ndarray, labels: np.ndarray):
    import pandas as pd

    card = rec.card
    n = len(images)
    frame = pd.DataFrame(images.reshape(n, -1).astype(np.int64),
                         columns=[f"pixel{i + 1}" for i in range(images[0].size)])
    frame["class"] = pd.Categorical.from_codes(labels, categories=list(rec.classes))
    derived = card.get("derived_from")
    description = "\n\n".join(filter(None, [
        card["description"],
        f"Exported by transfer-bench from its registry: {n} images, {images.shape[1]} channel(s) "
        f"of {images.shape[2]}x{images.shape[3]} pixels flattened channel-major into "
        "pixel1..pixelN (uint8 values 0-255), target 'class'.",
        f"Derived: {json.dumps(derived)}" if derived else "",
        "Meta-features (OpenML quality names where OpenML defines them): "
        + json.dumps({k: round(v, 6) for k, v in sorted(rec.meta_features.items())})]))
    return build_dataset(
        "Report this with the dataset card.", name=rec.name, description=description,
        creator=creator(card), contributor="transfer-bench export", collection_date=None,
        language="English", licence=card["license"], attributes="auto", data=frame,
        default_target_attribute="class", ignore_attribute=None, citation=card["citation"],
        original_data_url=card.get("homepage"), paper_url=None, row_id_attribute=None,
        version_label=None, update_comment=None)


def build_dataset(advice: str, **fields: Any):
    """``openml.datasets.create_dataset(**fields)``: the OpenMLDataset, its ARFF serialised
    and checked by openml-python; a refusal becomes an OpenMLExportError naming
    ``fields["name"]``, with ``advice``."""
    import openml

    try:
        return openml.datasets.create_dataset(**fields)
    except ValueError as err:
        raise OpenMLExportError(f"openml-python refused the export of '{fields['name']}': "
                                f"{err}", advice) from None


def creator(card: dict) -> str:
    """Who made the data: a BibTeX ``author`` line of the citation, else the authors of each
    ``Authors, Title, Venue``-style entry (``;``-separated), else the homepage."""
    cite = (card.get("citation") or "").strip()
    for line in cite.splitlines():
        if line.strip().lower().startswith("author") and "=" in line:
            return line.split("=", 1)[1].strip(" {},")[:200]
    authors = [entry.split(",", 1)[0].strip() for entry in " ".join(cite.split()).split(";")]
    return "; ".join(a for a in authors if a)[:200] or card.get("homepage") or "unknown"


def _write(dataset, rec: DatasetRecord, folder: Path) -> None:
    with atomic_folder(folder) as tmp:
        write_files(dataset, tmp)
        (tmp / "qualities.json").write_text(json.dumps(rec.meta_features, indent=2))


def write_files(dataset, folder: Path) -> None:
    """Write what an OpenML upload of ``dataset`` sends into ``folder``: ``description.xml``
    (openml-python's XML of it) and ``dataset.arff`` (its checked ARFF)."""
    (folder / "description.xml").write_text(dataset._to_xml())
    (folder / "dataset.arff").write_text(dataset._dataset)


def publish_export(export: Export, apikey: str | None, server: str | None = None) -> Export:
    """Upload the export with the user's OpenML API key to ``server`` (default openml-python's
    configured server); without a key, or with the server out of reach, it fails at once, and
    an HTTP error of the upload fails clearly too, the folder kept either way."""

    import openml

    kept = f"The export is written to {export.folder}."
    if not apikey:
        raise OpenMLExportError("--publish needs an OpenML API key in OPENML_APIKEY.",
                                f"{kept} Set OPENML_APIKEY (openml.org > your profile > API key).")
    server = server or openml.config.server
    url = urlparse(server)
    host, port = url.hostname or "www.openml.org", url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as err:
        raise OpenMLExportError(f"--publish cannot reach OpenML at {host}:{port} ({err}).",
                                f"{kept} Publish it again when online.") from None
    saved = openml.config.apikey, openml.config.server
    openml.config.apikey, openml.config.server = apikey, server
    try:
        published = export.dataset.publish()
    except Exception as err:  # openml's server exceptions, requests' HTTP and connection errors
        said = (str(err).splitlines() or [""])[0][:200].replace(apikey, "***")  # URLs carry it
        raise OpenMLExportError(f"--publish to OpenML at {server} failed ({type(err).__name__}: "
                                f"{said}).",
                                f"{kept} Check OPENML_APIKEY, and publish it again.") from None
    finally:
        openml.config.apikey, openml.config.server = saved
    return Export(export.name, export.folder, export.n_instances, export.n_features,
                  published, int(published.dataset_id))
