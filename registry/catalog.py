"""The catalog: every dataset card shipped in ``registry/catalog/*.yaml``, with aliases."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from registry.card import DatasetCard, load_card
from registry.errors import CardError, UnknownNameError
from registry.names import unknown_name_message

CATALOG_DIR = Path(__file__).parent / "catalog"


@dataclass(frozen=True)
class Catalog:
    """Cards by name plus an alias map. Build with :meth:`load`."""

    cards: dict[str, DatasetCard]
    aliases: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path = CATALOG_DIR) -> Catalog:
        """Read and validate every card in ``directory``; names and aliases must be unique."""
        cards: dict[str, DatasetCard] = {}
        aliases: dict[str, str] = {}
        for path in sorted(directory.glob("*.yaml")):
            card = load_card(path)
            if path.stem != card.name:
                raise CardError(f"Card file {path} holds dataset '{card.name}'.",
                                f"Rename the file to {card.name}.yaml.")
            for key in (card.name, *card.aliases):
                if key in cards or key in aliases:
                    raise CardError(f"Catalog name or alias '{key}' in {path} is used twice.",
                                    "Give each dataset and alias a unique name.")
            cards[card.name] = card
            aliases.update({a: card.name for a in card.aliases})
        return cls(cards=cards, aliases=aliases)

    def canonical(self, name: str) -> str:
        """The catalog name for ``name`` or one of its aliases."""
        key = name.strip().lower()
        if key in self.cards:
            return key
        if key in self.aliases:
            return self.aliases[key]
        raise UnknownNameError(
            unknown_name_message("dataset", name, sorted([*self.cards, *self.aliases])),
            "Run `bench datasets` to list the catalog, or register your own data with "
            "`bench add-dataset NAME --path DIR --format imagefolder` or `--card FILE`.")

    def key(self, name: str) -> str:
        """The catalog name for a catalog name or alias; any other name (a user's own
        dataset) as given, trimmed and lowercased."""
        return self.canonical(name) if name.strip().lower() in self else name.strip().lower()

    def get(self, name: str) -> DatasetCard:
        """A copy of the card for ``name`` (or an alias)."""
        return self.cards[self.canonical(name)].model_copy()

    def names(self) -> list[str]:
        return sorted(self.cards)

    def __contains__(self, name: str) -> bool:
        key = name.strip().lower()
        return key in self.cards or key in self.aliases
