"""The reference table of virtual drugs (one molecule at one strength, aggregating its
commercial products, imported ones included), read from ``drugs/data/virtual_drugs.csv``."""

from __future__ import annotations

import csv
import math
import re
import unicodedata
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


def _plain(text: str) -> str:
    """Casefolded, accents off, ``µg`` and ``mcg`` as ``ug``, decimal commas as points,
    spaces collapsed."""
    text = unicodedata.normalize("NFKD", text.casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = re.sub(r"(?<=\d),(?=\d)", ".", text.replace("\u03bc", "u").replace("mcg", "ug"))
    return " ".join(text.split())


def _key(text: str) -> str:
    return _plain(text.replace(IMPORTED, ""))


@cache
def _by_name() -> dict[str, str]:
    found: dict[str, str] = {}
    for drug in catalogue().values():
        found[_key(drug.code)] = drug.code
        for product in drug.products:
            found[_key(product)] = drug.code
    return found


NUMBER = r"(\d+(?:\.\d+)?)"
MASS = {"g": 1000.0, "mg": 1.0, "ug": 0.001}
RATIO = re.compile(NUMBER + r"\s*(mg|g|ug)\s*/\s*(\d+(?:\.\d+)?)?\s*ml\b")
PERCENT = re.compile(NUMBER + r"\s*%")
VOLUME = re.compile(NUMBER + r"\s*ml\b")
AMOUNT = re.compile(NUMBER + r"\s*(mg|g|ug)\b")


@dataclass(frozen=True, slots=True)
class Strength:
    """What a name says of the dose: the mg and mL of one unit, or only a concentration
    (mg/mL), or only the mg; None where it says nothing."""

    mg: float | None = None
    ml: float | None = None
    per_ml: float | None = None

    def fits(self, other: Strength) -> bool:
        """Whether the catalogue's full strength ``other`` agrees with every figure given."""
        pairs = [(self.mg, other.mg), (self.ml, other.ml), (self.per_ml, other.per_ml)]
        return all(
            a is None or (b is not None and math.isclose(a, b, rel_tol=1e-6)) for a, b in pairs
        )


def strength_of(text: str) -> Strength:
    """The strength a product name gives (``5 mg/1 mL``, ``5mg/ml 10 ml``, ``1 % 50 mL``,
    ``50 mg 10 mL``, ``1 g/50 mL``), read from its plain form."""
    text = _plain(text)
    ratio = RATIO.search(text)
    rest = RATIO.sub(" ", text)
    volumes = [float(v) for v in VOLUME.findall(rest)]
    volume = volumes[0] if volumes and volumes[0] > 0 else None
    per_ml: float | None = None
    mg: float | None = None
    if ratio is not None:
        amount = float(ratio.group(1)) * MASS[ratio.group(2)]
        if ratio.group(3) is None:  # mg/mL: a concentration
            per_ml = amount
        elif float(ratio.group(3)) > 0:
            per_ml = amount / float(ratio.group(3))
            if volume is None:
                mg, volume = amount, float(ratio.group(3))
    elif (percent := PERCENT.search(rest)) is not None:
        per_ml = float(percent.group(1)) * 10  # 1 % = 1 g per 100 mL
    elif (mass := AMOUNT.search(rest)) is not None:
        mg = float(mass.group(1)) * MASS[mass.group(2)]
        if volume is not None:
            per_ml = mg / volume
    if per_ml is not None and volume is not None and mg is None:
        mg = per_ml * volume
    return Strength(mg, volume, per_ml)


@cache
def _molecules() -> dict[str, str]:
    """Word → molecule: each molecule's name and its brands (a product's first word)."""
    words: dict[str, str] = {}
    for drug in catalogue().values():
        words[_plain(drug.molecule)] = drug.molecule
        for product in drug.products:
            if not product.startswith(IMPORTED):
                words.setdefault(_plain(product).split()[0], drug.molecule)
    return words


def _lenient(name: str) -> VirtualDrug | None:
    """The one virtual drug whose molecule (or brand) the name gives and whose strength agrees
    with every figure it gives; None if none or several."""
    words = set(re.findall(r"[a-z]+", _plain(name)))
    molecules = {m for w, m in _molecules().items() if w in words}
    if len(molecules) != 1:
        return None
    (molecule,) = molecules
    given = strength_of(name)
    found = [
        d
        for d in catalogue().values()
        if d.molecule == molecule and given.fits(strength_of(d.strength))
    ]
    return found[0] if len(found) == 1 else None


def resolve(code_or_product: str) -> VirtualDrug | None:
    """The virtual drug of a code or of one of its products' names (case, accents and spaces
    ignored); else, leniently, the one virtual drug of the molecule or brand the name gives
    whose strength agrees with the name's (``MIDAZOLAM ARROW 5 mg/1 mL``, ``Midazolam 5mg/ml
    amp. 10 ml``, ``propofol 1% 50ml``); None if none or several fit."""
    code = _by_name().get(_key(code_or_product))
    if code is not None:
        return catalogue()[code]
    return _lenient(code_or_product[:500])
