"""Codes as data: which LOINC codes are SARS-CoV-2 results (and of which family), which are
cycle-threshold values, quantities or ask-at-order-entry questions (not results), and which
SNOMED CT, LOINC answer and text values mean P, N, I or X (docs/health.md §1.6).

The tables are the CSV files of ``sidep/data`` (origins in its README), read once. This product
includes LOINC codes: see :data:`LOINC_NOTICE`.
"""

from __future__ import annotations

import csv
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path

from sidep.model import Method, Result

DATA = Path(__file__).resolve().parent / "data"

LOINC_NOTICE = (
    "This material contains content from LOINC (http://loinc.org). LOINC is copyright "
    "© Regenstrief Institute, Inc. and the Logical Observation Identifiers Names and Codes "
    "(LOINC) Committee and is available at no cost under the license at "
    "http://loinc.org/license. LOINC® is a registered United States trademark of Regenstrief "
    "Institute, Inc. The labels in sidep/data/loinc.csv are our own short descriptions, not "
    "LOINC names."
)
"""The attribution the LOINC licence asks of anyone who ships LOINC codes."""


class Role(StrEnum):
    """What an observation with this LOINC code is."""

    RESULT = "result"
    """A SARS-CoV-2 conclusion: its value is P, N, I or X."""
    CT = "ct"
    """A PCR cycle-threshold value: a number, not a result."""
    QUANTITY = "quantity"
    """A quantitative serology (units per volume): a number, not a conclusion."""
    QUESTION = "question"
    """An ask-at-order-entry question (symptoms, first test...): context, not a result."""


@dataclass(frozen=True, slots=True)
class LoincCode:
    code: str
    role: Role
    method: Method | None
    label: str


@cache
def loinc_table() -> dict[str, LoincCode]:
    """Every LOINC code we know, by code."""
    table: dict[str, LoincCode] = {}
    with (DATA / "loinc.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter=";"):
            method = Method(row["method"]) if row["method"] else None
            table[row["loinc"]] = LoincCode(row["loinc"], Role(row["role"]), method, row["label"])
    return table


def lookup_loinc(code: str) -> LoincCode | None:
    """The entry of a LOINC code (spaces around it ignored), None when it is not ours."""
    return loinc_table().get(code.strip())


def method_of(code: str) -> Method | None:
    """The family (PCR, ANTIGEN, SEROLOGY) of a SARS-CoV-2 *result* code, else None."""
    entry = lookup_loinc(code)
    if entry is None or entry.role is not Role.RESULT:
        return None
    return entry.method


def not_a_result_reason(code: str) -> str | None:
    """Why an observation with this LOINC code is deliberately not a result, else None."""
    entry = lookup_loinc(code)
    if entry is None or entry.role is Role.RESULT:
        return None
    if entry.role is Role.CT:
        return f"{entry.code} is a cycle-threshold value, not a result"
    if entry.role is Role.QUANTITY:
        return f"{entry.code} is a quantitative serology value, not a conclusion"
    return f"{entry.code} is an ask-at-order-entry question, not a result"


# --- result values --------------------------------------------------------------------------------
SNOMED = "SCT"
LOINC = "LN"
TEXT = "TEXT"

_SYSTEMS = {
    "SCT": SNOMED,
    "SNM": SNOMED,
    "SNOMED": SNOMED,
    "SNOMEDCT": SNOMED,
    "SNOMED-CT": SNOMED,
    "HTTP://SNOMED.INFO/SCT": SNOMED,
    "2.16.840.1.113883.6.96": SNOMED,
    "LN": LOINC,
    "LOINC": LOINC,
    "HTTP://LOINC.ORG": LOINC,
    "2.16.840.1.113883.6.1": LOINC,
}


def coding_system(name: str) -> str | None:
    """``SCT`` or ``LN`` for the many ways messages name SNOMED CT and LOINC, else None."""
    key = name.strip().upper()
    key = key.removeprefix("URN:OID:")
    return _SYSTEMS.get(key)


@cache
def _value_table() -> dict[tuple[str, str], Result]:
    table: dict[tuple[str, str], Result] = {}
    with (DATA / "result_values.csv").open(encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter=";"):
            table[(row["system"], row["code"])] = Result(row["result"])
    return table


def result_from_code(system: str, code: str) -> Result | None:
    """The result a coded value means (``SCT``/``LN`` or any spelling of them), else None.

    A code without a known system is looked up in SNOMED CT, then LOINC answers (their code
    shapes do not overlap: LOINC answers start with ``LA``)."""
    table = _value_table()
    code = code.strip()
    sys = coding_system(system) if system.strip() else None
    if sys is not None:
        return table.get((sys, code))
    if system.strip():
        return None
    return table.get((SNOMED, code)) or table.get((LOINC, code.upper()))


def normalise_text(text: str) -> str:
    """Upper case, accents stripped, separators collapsed: ``Non détecté.`` -> ``NON DETECTE``."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c)).upper()
    kept = "".join(c if c.isalnum() or c == "-" else " " for c in bare)
    return " ".join(kept.split())


def result_from_text(text: str) -> Result | None:
    """The result a free-text value means (French or English lab wording), else None."""
    return _value_table().get((TEXT, normalise_text(text)))
