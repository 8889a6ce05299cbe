"""The code tables (sidep/data): LOINC families and roles, result values, territories."""

from __future__ import annotations

import pytest

from sidep import codes
from sidep.model import Method, Result
from sidep.territory import dep_from_finess, dep_from_postcode, dep_of, departements, region_of


@pytest.mark.parametrize(
    ("loinc", "method"),
    [
        ("94500-6", Method.PCR),
        ("94309-2", Method.PCR),
        ("94845-5", Method.PCR),
        ("94558-4", Method.ANTIGEN),
        ("97097-0", Method.ANTIGEN),
        ("94762-2", Method.SEROLOGY),
        # public code sometimes calls it an antigen test: it is IgM serology (health.md §1.6)
        ("94564-2", Method.SEROLOGY),
    ],
)
def test_loinc_families(loinc: str, method: Method) -> None:
    assert codes.method_of(loinc) is method
    assert codes.not_a_result_reason(loinc) is None


@pytest.mark.parametrize(
    ("loinc", "word"),
    [("94745-7", "cycle-threshold"), ("94505-5", "quantitative"), ("95419-8", "question")],
)
def test_codes_that_are_not_results(loinc: str, word: str) -> None:
    assert codes.method_of(loinc) is None
    assert word in (codes.not_a_result_reason(loinc) or "")


def test_unknown_loinc_is_neither_result_nor_skipped() -> None:
    assert codes.method_of("1554-5") is None  # glucose
    assert codes.not_a_result_reason("1554-5") is None
    assert codes.lookup_loinc(" 94500-6 ") is not None


def test_every_result_code_has_a_method_and_the_notice_names_loinc() -> None:
    for entry in codes.loinc_table().values():
        assert (entry.role is codes.Role.QUESTION) == (entry.method is None)
    assert "Regenstrief" in codes.LOINC_NOTICE


@pytest.mark.parametrize(
    ("system", "code", "result"),
    [
        ("SCT", "260373001", Result.POSITIVE),
        ("http://snomed.info/sct", "260415000", Result.NEGATIVE),
        ("SNM", "10828004", Result.POSITIVE),
        ("urn:oid:2.16.840.1.113883.6.96", "125154007", Result.NON_CONFORMING),
        ("LN", "LA11882-0", Result.POSITIVE),
        ("http://loinc.org", "LA11883-8", Result.NEGATIVE),
        ("LN", "LA9663-1", Result.INDETERMINATE),
        ("", "419984006", Result.INDETERMINATE),
        ("", "la6577-6", Result.NEGATIVE),
    ],
)
def test_coded_values(system: str, code: str, result: Result) -> None:
    assert codes.result_from_code(system, code) is result


def test_coded_values_of_another_system_or_unknown() -> None:
    assert codes.result_from_code("L", "260373001") is None
    assert codes.result_from_code("SCT", "3092008") is None


@pytest.mark.parametrize(
    ("text", "result"),
    [
        ("Positif", Result.POSITIVE),
        ("NÉGATIF", Result.NEGATIVE),
        ("Non détecté.", Result.NEGATIVE),
        ("not detected", Result.NEGATIVE),
        ("Ininterprétable", Result.INDETERMINATE),
        ("prélèvement non conforme", Result.NON_CONFORMING),
        ("x", Result.NON_CONFORMING),
    ],
)
def test_text_values(text: str, result: Result) -> None:
    assert codes.result_from_text(text) is result


def test_text_that_means_nothing() -> None:
    assert codes.result_from_text("182 mg/dl") is None


@pytest.mark.parametrize(
    ("postcode", "dep"),
    [
        ("75011", "75"),
        ("01000", "01"),
        ("20000", "2A"),
        ("20167", "2A"),
        ("20200", "2B"),
        ("20600", "2B"),
        ("97400", "974"),
        ("97600", "976"),
        ("97500", None),  # Saint-Pierre-et-Miquelon: a collectivity, not a département
        ("98000", None),  # Monaco
        ("7501", None),
        ("ABCDE", None),
        (None, None),
    ],
)
def test_departement_of_a_postcode(postcode: str | None, dep: str | None) -> None:
    assert dep_from_postcode(postcode) == dep


def test_departement_of_a_finess_and_the_fallback() -> None:
    assert dep_from_finess("750712184") == "75"
    assert dep_from_finess("2A0000048") == "2A"
    assert dep_from_finess("970100228") == "971"
    assert dep_from_finess("974000001") == "974"
    assert dep_from_finess("12345") is None
    assert dep_of("69003", "750712184") == "69"
    assert dep_of(None, "750712184") == "75"
    assert dep_of("98000", None) is None


def test_departements_and_regions() -> None:
    assert len(departements()) == 101
    assert region_of("2A") == "94"
    assert region_of("976") == "06"
    assert region_of("75") == "11"
    assert region_of("99") is None
