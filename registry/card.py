"""The dataset card: declarative, typed metadata for one dataset, validated from YAML.

Cards are frozen pydantic models; lookups hand out copies. The six expert meta-features follow
van den Brandt et al. 2021 (natural/medical, grayscale/color, objects/textures, type, diversity, number of classes).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from registry.errors import CardError

NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_HEX = re.compile(r"^[0-9a-f]+$")
_HEX_LEN = {"md5": 32, "sha256": 64}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Checksum(_Frozen):
    """A published checksum (upstream sources publish md5 for most archives)."""

    algorithm: Literal["sha256", "md5"] = "sha256"
    value: str

    @model_validator(mode="after")
    def _hex(self) -> Checksum:
        value = self.value.lower()
        if not _HEX.match(value) or len(value) != _HEX_LEN[self.algorithm]:
            raise ValueError(f"{self.algorithm} must be {_HEX_LEN[self.algorithm]} hex digits")
        return self


class RemoteFile(_Frozen):
    """One file of a public source: where to get it, what it must hash to, how to unpack it."""

    url: str
    filename: str
    checksum: Checksum | None = None
    unpack: Literal["none", "zip", "tar", "gunzip"] = "none"
    size_bytes: int | None = None


class Obtain(_Frozen):
    """How to obtain the data: download, manual steps (gated data), embedded, OpenML, derived."""

    kind: Literal["download", "manual", "embedded", "openml", "derived"]
    files: tuple[RemoteFile, ...] = ()
    steps: tuple[str, ...] = ()
    path_hint: str | None = None
    shared_as: str | None = Field(default=None, pattern=NAME_PATTERN)

    @model_validator(mode="after")
    def _consistent(self) -> Obtain:
        if self.kind == "download" and not self.files:
            raise ValueError("obtain.kind 'download' needs at least one entry in obtain.files")
        if self.kind == "manual" and not self.steps:
            raise ValueError("obtain.kind 'manual' needs the manual steps in obtain.steps")
        return self


class FormatSpec(_Frozen):
    """The registered loader that reads the data on disk, with its options."""

    loader: str
    options: dict[str, Any] = Field(default_factory=dict)


class ExpertFeatures(_Frozen):
    """The six expert meta-features of van den Brandt et al. 2021 (majority vote of raters)."""

    origin: Literal["natural", "medical"]
    color: Literal["grayscale", "color"]
    content: Literal["objects", "textures"]
    subject: str
    diversity: Literal["low", "medium", "high"]
    n_classes: Literal["two", "few", "many"]
    note: str | None = None

    # the six properties, in the paper's order (the Hamming distance compares these)
    FIELDS: ClassVar[tuple[str, ...]] = ("origin", "color", "content", "subject", "diversity",
                                         "n_classes")

    def vector(self) -> tuple[str, ...]:
        """The six values compared by the Hamming distance."""
        return tuple(getattr(self, f) for f in self.FIELDS)


class ImageSize(_Frozen):
    """Native image size (height, width) or the range seen in the dataset."""

    min: tuple[int, int]
    max: tuple[int, int]


class Derivation(_Frozen):
    """Exactly how a derived dataset is made from its parent."""

    parent: str
    method: str
    params: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None
    description: str


class DatasetCard(_Frozen):
    """Everything transfer-bench knows about one dataset before touching its files."""

    name: str = Field(pattern=NAME_PATTERN)
    aliases: tuple[str, ...] = ()
    description: str
    origin: Literal["medical", "natural"]
    modality: str
    task: Literal["binary", "multiclass", "multilabel"]
    classes: tuple[str, ...]
    n_samples: int | None = Field(default=None, gt=0)
    image_size: ImageSize | None = None
    channels: Literal[1, 3]
    cache_sizes: tuple[tuple[int, int], ...] = ((32, 32),)
    license: str
    citation: str
    homepage: str
    obtain: Obtain
    format: FormatSpec
    expert: ExpertFeatures | None = None
    openml_id: int | None = None
    derived_from: Derivation | None = None

    @field_validator("aliases")
    @classmethod
    def _alias_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for alias in v:
            if not re.match(NAME_PATTERN, alias):
                raise ValueError(f"alias '{alias}' must be lowercase words joined by dashes")
        return v

    @field_validator("cache_sizes")
    @classmethod
    def _sizes(cls, v: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
        if not v:
            raise ValueError("cache_sizes needs at least one (height, width)")
        for h, w in v:
            if not (4 <= h <= 4096 and 4 <= w <= 4096):
                raise ValueError(f"cache size {h}x{w} is outside 4..4096 pixels")
        return v

    @model_validator(mode="after")
    def _classes_match_task(self) -> DatasetCard:
        if len(set(self.classes)) != len(self.classes):
            raise ValueError("class names must be unique")
        if len(self.classes) < 2:
            raise ValueError("a dataset needs at least two classes")
        if self.task == "binary" and len(self.classes) != 2:
            raise ValueError(f"task 'binary' needs 2 classes, the card lists {len(self.classes)}")
        if self.obtain.kind == "derived" and self.derived_from is None:
            raise ValueError("obtain.kind 'derived' needs a derived_from section")
        if self.obtain.kind == "openml" and self.openml_id is None:
            raise ValueError("obtain.kind 'openml' needs openml_id")
        return self


def _format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(card)"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


def card_from_dict(data: Any, source: str) -> DatasetCard:
    """Validate ``data`` into a card; ``source`` names the file in error messages."""
    if not isinstance(data, dict):
        raise CardError(f"Dataset card {source} must be a YAML mapping, got {type(data).__name__}.",
                        "Start from one of the cards in registry/catalog/.")
    try:
        return DatasetCard.model_validate(data)
    except ValidationError as err:
        raise CardError(f"Dataset card {source} is invalid: {_format_validation_error(err)}.",
                        "Fix those fields (see registry/card.py for the schema).") from None


def load_card(path: Path) -> DatasetCard:
    """Read and validate one YAML card file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CardError(f"Cannot read dataset card {path}: {err.strerror}.",
                        "Check the path given to --card.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise CardError(f"Dataset card {path} is not valid YAML: {err}.",
                        "Fix the YAML syntax.") from None
    return card_from_dict(data, str(path))
