"""FHIR R4 Bundles: a French lab bundle (ours: INS-NIR, Corsican NIR, FINESS organisation, a Ct
value beside the result), a real-world example, refusals and the OperationOutcome.

``bioportal_example_bundle.json``: the example bundle of DeptSaludPR/BioPortal-FHIR
``README.md`` (Puerto Rico's Department of Health COVID-19 result intake), its ``meta`` tags
left out. It is messy as real senders are: an ``Observation.id`` that is a URN (not a valid FHIR
id), a ``receivedTime`` without time zone, a result coded in an ``UNDEFINED`` system, no
sampling time.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sidep.formats import fhir
from sidep.formats.detect import parse_any
from sidep.model import Method, Refusal, Result, Sex, SourceFormat, Status

DATA = Path(__file__).parent / "data"


def french() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / "french_bundle.json").read_bytes())
    return data


def entry(bundle: dict[str, Any], rid: str) -> dict[str, Any]:
    found: dict[str, Any] = next(
        e["resource"] for e in bundle["entry"] if e["resource"]["id"] == rid
    )
    return found


def parse(bundle: dict[str, Any], **kw: Any) -> Any:
    return fhir.parse(json.dumps(bundle).encode(), "b.json", **kw)


def test_french_bundle() -> None:
    parsed = fhir.parse((DATA / "french_bundle.json").read_bytes(), "b.json")
    assert parsed.refusals == ()
    (r,) = parsed.results
    paris = timezone(timedelta(hours=2))
    assert r.lab == "2B0000251" and r.sample_id == "PRL-2020-0042" and r.loinc == "94500-6"
    assert r.method is Method.PCR and r.result is Result.POSITIVE and r.status is Status.FINAL
    assert r.sampled_at == datetime(2020, 10, 1, 8, 30, tzinfo=paris)  # Specimen.collection
    assert r.validated_at == datetime(2020, 10, 1, 18, 0, tzinfo=paris)  # the report's issued
    p = r.patient
    assert p.nir == "253072B07300470" and p.nir_valid is True
    assert (p.last_name, p.first_name, p.birth_date) == ("Santoni", "Marie Ange", date(1953, 7, 12))
    assert p.sex is Sex.FEMALE and p.postcode == "20200" and r.dep == "2B"
    assert p.email == "m.santoni@example.org" and r.source is SourceFormat.FHIR
    assert "cycle-threshold" in parsed.skipped[0]


def test_variants_of_values_status_and_dates() -> None:
    b = french()
    obs = entry(b, "o1")
    obs["valueCodeableConcept"] = {"text": "Négatif"}
    obs["status"] = "amended"
    obs["effectiveDateTime"] = "2020-09-30"
    entry(b, "p1")["birthDate"] = "1953"
    (r,) = parse(b).results
    assert r.result is Result.NEGATIVE and r.status is Status.CORRECTED
    assert r.sampled_at.date() == date(2020, 9, 30)
    assert r.patient.birth_date is None  # a partial birth date is kept as unknown
    del obs["valueCodeableConcept"]
    obs["valueString"] = "positif"
    (r,) = parse(b).results
    assert r.result is Result.POSITIVE


def test_bad_nir_key_is_flagged_nia_is_no_nir() -> None:
    b = french()
    entry(b, "p1")["identifier"][0]["value"] = "253072B07300471"
    (r,) = parse(b).results
    assert r.patient.nir_valid is False
    entry(b, "p1")["identifier"][0]["system"] = "urn:oid:1.2.250.1.213.1.4.9"
    (r,) = parse(b).results
    assert r.patient.nir is None


def test_lab_from_the_sender_when_the_bundle_has_no_finess() -> None:
    b = french()
    entry(b, "lab")["identifier"] = []
    assert "FINESS" in parse(b).refusals[0].reason
    (r,) = parse(b, lab_finess="750712184").results
    assert r.lab == "750712184" and r.dep == "2B"


def test_refusals() -> None:
    cases: list[tuple[str, Any]] = [
        ("not JSON", b"{nope"),
        ("not JSON", (DATA / "french_bundle.json").read_bytes()[:700]),  # truncated
        ("not JSON", (DATA / "french_bundle.json").read_text().encode("utf-16")),
        ("not a FHIR Bundle", {"resourceType": "Patient"}),
        (
            "not a valid FHIR R4 Bundle",
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": {"resourceType": "Observation", "status": "final"}}],
            },
        ),
    ]
    b = french()
    entry(b, "o1")["status"] = "cancelled"
    cases.append(("status", b))
    b = french()
    entry(b, "o1")["valueCodeableConcept"] = {
        "coding": [{"system": "http://snomed.info/sct", "code": "3092008"}]
    }
    cases.append(("not a result we know", b))
    b = french()
    del entry(b, "s1")["collection"]
    cases.append(("no sampling time", b))
    b = french()
    entry(b, "o1")["code"]["coding"][0]["code"] = "1554-5"
    cases.append(("no SARS-CoV-2 result", b))
    for expected, bundle in cases:
        data = bundle if isinstance(bundle, bytes) else json.dumps(bundle).encode()
        parsed = fhir.parse(data, "b.json")
        assert parsed.results == ()
        assert expected in parsed.refusals[0].reason, (expected, parsed.refusals)


def test_bioportal_example_is_refused_with_reasons() -> None:
    raw = json.loads((DATA / "bioportal_example_bundle.json").read_bytes())
    parsed = fhir.parse(json.dumps(raw).encode(), "bioportal.json", lab_finess="750712184")
    assert parsed.results == ()
    assert "entry.2.resource.id" in parsed.refusals[0].reason  # a URN is no FHIR id
    raw["entry"][2]["resource"]["id"] = "2d6711f6-c5ba-494c-9e4b-968c8f51ce83"
    raw["entry"][0]["resource"]["result"][0]["reference"] = (
        "Observation/2d6711f6-c5ba-494c-9e4b-968c8f51ce83"
    )
    raw["entry"][3]["resource"]["receivedTime"] += "-04:00"
    parsed = fhir.parse(json.dumps(raw).encode(), "bioportal.json", lab_finess="750712184")
    assert "no sampling time" in parsed.refusals[0].reason  # received is not sampled
    raw["entry"][2]["resource"]["effectiveDateTime"] = "2020-07-28T09:00:00-04:00"
    (r,) = fhir.parse(json.dumps(raw).encode(), "bioportal.json", lab_finess="750712184").results
    assert r.result is Result.NEGATIVE  # NOT_DETECTED in an "UNDEFINED" system, read as text
    assert r.sample_id == "580128" and r.patient.last_name == "Nieves Miranda"


def test_operation_outcome() -> None:
    outcome = fhir.operation_outcome([Refusal("b.json", "not a valid FHIR R4 Bundle: x")])
    assert outcome["resourceType"] == "OperationOutcome"
    (issue,) = outcome["issue"]
    assert issue["severity"] == "error" and issue["code"] == "invalid"
    assert issue["diagnostics"] == "not a valid FHIR R4 Bundle: x"
    assert fhir.operation_outcome([])["issue"][0]["severity"] == "information"


def test_detected_and_read_by_parse_any() -> None:
    parsed = parse_any((DATA / "french_bundle.json").read_bytes(), "b.json")
    assert len(parsed.results) == 1


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    _JSON,
    st.sampled_from(["o1", "p1", "s1", "cr-42", "lab"]),
    st.sampled_from(
        [
            "status",
            "code",
            "subject",
            "valueCodeableConcept",
            "birthDate",
            "identifier",
            "collection",
            "result",
        ]
    ),
)
def test_no_mangled_bundle_raises(value: Any, rid: str, key: str) -> None:
    b = french()
    entry(b, rid)[key] = value
    parsed = parse(b)
    assert parsed.results or parsed.refusals
