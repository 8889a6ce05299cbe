"""The reference table of virtual drugs (one molecule at one strength, aggregating its
commercial products, imported ones included), read from ``drugs/data/virtual_drugs.csv``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
IMPORTED = "import:"


@dataclass(frozen=True, slots=True)
class VirtualDrug:
    """A molecule at one strength, counted in ``unit``."""

    code: str
    molecule: str
    strength: str
    form: str
    unit: str
    category: str
    products: tuple[str, ...]

    @property
    def label(self) -> str:
        """``midazolam 50 mg/10 mL``."""
        return f"{self.molecule} {self.strength}"

    @property
    def imported(self) -> tuple[str, ...]:
        """The imported products (without a French code)."""
        return tuple(p.removeprefix(IMPORTED) for p in self.products if p.startswith(IMPORTED))


@cache
def catalogue() -> dict[str, VirtualDrug]:
    """Code → virtual drug, in the file's order."""
    with (DATA / "virtual_drugs.csv").open(encoding="utf-8") as f:
        return {
            r["code"]: VirtualDrug(
                r["code"],
                r["molecule"],
                r["strength"],
                r["form"],
                r["unit"],
                r["category"],
                tuple(p.strip() for p in r["products"].split("|") if p.strip()),
            )
            for r in csv.DictReader(f)
        }


def _key(text: str) -> str:
    return " ".join(text.casefold().replace(IMPORTED, "").split())


@cache
def _by_name() -> dict[str, str]:
    found: dict[str, str] = {}
    for drug in catalogue().values():
        found[_key(drug.code)] = drug.code
        for product in drug.products:
            found[_key(product)] = drug.code
    return found


def resolve(code_or_product: str) -> VirtualDrug | None:
    """The virtual drug of a code or of one of its products' names (case and spaces
    ignored), or None."""
    code = _by_name().get(_key(code_or_product))
    return None if code is None else catalogue()[code]
