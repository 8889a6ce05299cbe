"""FHIR R4 lab results: a ``Bundle`` of ``DiagnosticReport``, ``Observation``, ``Patient`` and
``Specimen`` (docs/health.md §1.5), validated with the ``fhir.resources`` models.

``fhir.resources`` 8 ships R5, R4B and STU3 but no pure R4 package; R4B (4.3.0) has the same
shape for every element read here, so bundles are validated with ``fhir.resources.R4B``.

A bundle is one message: stored whole or refused whole. What is read, and where:

- each ``Observation`` whose ``code`` holds a SARS-CoV-2 LOINC coding (``http://loinc.org``, or
  a known LOINC code under a sloppy system such as ``LN``); Ct values, quantities and
  questions are skipped, other analytes too;
- its value: ``valueCodeableConcept`` (SNOMED CT or LOINC answer, else the coding's display or
  the concept's text) or ``valueString``;
- its status: ``final`` -> final, ``corrected``/``amended`` -> corrected, ``preliminary`` ->
  preliminary, anything else refused;
- sampling time: ``effectiveDateTime`` (or ``effectivePeriod.start``), else the specimen's
  ``collection.collectedDateTime``; validation time: ``issued`` (of the observation, else its
  report);
- sample id: the specimen's ``accessionIdentifier``, else its first identifier, else the
  report's first identifier, else the observation's;
- the patient (``subject``): an INS identifier (``urn:oid:1.2.250.1.213.1.4.8`` and the test/demo
  OIDs; an INS-NIA is no NIR), else an identifier typed ``NH``/``INS``; name, ``birthDate``
  (a partial date is kept as unknown), ``gender``, the first address's ``postalCode``;
- the lab: a FINESS identifier of the performing ``Organization``, else the FINESS of the
  authenticated sender given by the transport (``lab_finess``).

:func:`operation_outcome` turns refusals into the ``OperationOutcome`` answered over HTTP.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle
from pydantic import ValidationError

from kit.identity import INS_NIA_OID, INS_OIDS
from sidep import codes
from sidep.formats.common import (
    PARIS,
    Refuse,
    clean,
    make_result,
    nir_of,
    sex_of,
    too_big,
)
from sidep.model import LabResult, Parsed, Patient, Refusal, Result, SourceFormat, Status

_NIR_SYSTEMS = {f"urn:oid:{oid}" for oid in INS_OIDS if oid != INS_NIA_OID}
FINESS_SYSTEMS = {"urn:oid:1.2.250.1.71.4.2.2", "http://finess.sante.gouv.fr"}
"""Identifier systems of a FINESS (the ANS OID of FINESS numbers, and its web namespace)."""
_FINESS = re.compile(r"[0-9][0-9AB][0-9]{7}")
_STATUSES = {
    "final": Status.FINAL,
    "corrected": Status.CORRECTED,
    "amended": Status.CORRECTED,
    "preliminary": Status.PRELIMINARY,
}
_GENDERS = {"male": "M", "female": "F", "other": "U", "unknown": "U"}


def parse(data: bytes, where: str, lab_finess: str | None = None) -> Parsed:
    """The results of a FHIR Bundle (JSON), or its refusal. Never raises."""
    big = too_big(data)
    if big is not None:
        return Parsed(refusals=(Refusal(where, big),))
    try:
        results, skipped = _read(data, lab_finess)
    except Refuse as refused:
        return Parsed(refusals=(Refusal(where, refused.reason),))
    except Exception as error:  # hostile input must never escape as a crash
        return Parsed(refusals=(Refusal(where, f"unreadable bundle ({type(error).__name__})"),))
    return Parsed(tuple(results), (), tuple(f"{where}: {why}" for why in skipped))


def operation_outcome(refusals: tuple[Refusal, ...] | list[Refusal]) -> dict[str, Any]:
    """The FHIR ``OperationOutcome`` (as a JSON-ready dict) telling a sender why its bundle was
    refused: one ``error`` issue per refusal, the reason in ``diagnostics``."""
    issues = [
        {
            "severity": "error",
            "code": "processing" if "not a valid FHIR" not in r.reason else "invalid",
            "diagnostics": r.reason,
            "location": [r.where],
        }
        for r in refusals
    ]
    if not issues:
        issues = [{"severity": "information", "code": "informational", "diagnostics": "accepted"}]
    return {"resourceType": "OperationOutcome", "issue": issues}


# --- reading --------------------------------------------------------------------------------------
def _read(data: bytes, lab_finess: str | None) -> tuple[list[LabResult], list[str]]:
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise Refuse("not JSON (a FHIR Bundle is expected)") from None
    if not isinstance(raw, dict) or raw.get("resourceType") != "Bundle":
        raise Refuse("not a FHIR Bundle (resourceType must be Bundle)")
    try:
        bundle = Bundle.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        place = ".".join(str(p) for p in first.get("loc", ()))
        raise Refuse(
            f"not a valid FHIR R4 Bundle: {place}: {first.get('msg', 'invalid')}"[:300]
        ) from None
    resources: dict[str, Any] = {}
    observations: list[Any] = []
    reports: list[Any] = []
    for entry in bundle.entry or []:
        resource = entry.resource
        if resource is None:
            continue
        kind = resource.get_resource_type()
        for key in _keys(entry.fullUrl, kind, resource.id):
            resources[key] = resource
        if kind == "Observation":
            observations.append(resource)
        elif kind == "DiagnosticReport":
            reports.append(resource)
    report_of: dict[int, Any] = {}
    for report in reports:
        for ref in report.result or []:
            target = resources.get(ref.reference or "")
            if target is not None:
                report_of[id(target)] = report
    results: list[LabResult] = []
    skipped: list[str] = []
    for index, observation in enumerate(observations, start=1):
        label = f"Observation {observation.id or index}"
        loinc = _loinc(observation.code)
        if loinc is None:
            skipped.append(f"{label}: not a SARS-CoV-2 code")
            continue
        why = codes.not_a_result_reason(loinc)
        if why is not None:
            skipped.append(f"{label}: {why}")
            continue
        has_value = observation.valueCodeableConcept is not None or observation.valueString
        if not has_value and observation.hasMember:
            skipped.append(f"{label}: a panel, its members are read one by one")
            continue
        results.append(
            _result(
                observation, label, loinc, report_of.get(id(observation)), resources, lab_finess
            )
        )
    if not results:
        raise Refuse("the bundle holds no SARS-CoV-2 result")
    return results, skipped


def _keys(full_url: str | None, kind: str, rid: str | None) -> list[str]:
    keys = []
    if full_url:
        keys.append(str(full_url))
    if rid:
        keys += [f"{kind}/{rid}", f"urn:uuid:{rid}"]
    return keys


def _result(
    observation: Any,
    label: str,
    loinc: str,
    report: Any,
    resources: dict[str, Any],
    lab_finess: str | None,
) -> LabResult:
    status = _STATUSES.get(str(observation.status))
    if status is None:
        raise Refuse(f"{label}: status {observation.status!r} is not final, corrected or prelim.")
    specimen = _target(resources, observation.specimen)
    if specimen is None and report is not None and report.specimen:
        specimen = _target(resources, report.specimen[0])
    sampled = _when(observation.effectiveDateTime)
    if sampled is None and observation.effectivePeriod is not None:
        sampled = _when(observation.effectivePeriod.start)
    if sampled is None and specimen is not None and specimen.collection is not None:
        sampled = _when(specimen.collection.collectedDateTime)
    if sampled is None:
        raise Refuse(
            f"{label}: no sampling time (effectiveDateTime or Specimen.collection.collected)"
        )
    issued = _when(observation.issued) or (_when(report.issued) if report is not None else None)
    subject = _target(resources, observation.subject) or (
        _target(resources, report.subject) if report is not None else None
    )
    if subject is None or subject.get_resource_type() != "Patient":
        raise Refuse(f"{label}: its subject is not a Patient of the bundle")
    return make_result(
        lab=_lab(observation, report, resources, lab_finess),
        sample_id=_sample_id(specimen, report, observation, label),
        loinc=loinc,
        result=_value(observation, label),
        sampled_at=sampled,
        validated_at=issued,
        status=status,
        patient=_patient(subject),
        source=SourceFormat.FHIR,
        raw_ref=label,
    )


def _target(resources: dict[str, Any], reference: Any) -> Any:
    if reference is None or not reference.reference:
        return None
    return resources.get(str(reference.reference))


def _when(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=PARIS)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=PARIS)
    return None  # absent, or a partial date (a year, a month): no day to count


def _loinc(concept: Any) -> str | None:
    codings = list(concept.coding or []) if concept is not None else []
    for coding in codings:
        if (
            coding.code
            and codes.coding_system(str(coding.system or "")) == codes.LOINC
            and codes.lookup_loinc(str(coding.code)) is not None
        ):
            return str(coding.code).strip()
    for coding in codings:
        if coding.code and codes.lookup_loinc(str(coding.code)) is not None:
            return str(coding.code).strip()
    return None


def _value(observation: Any, label: str) -> Result:
    concept = observation.valueCodeableConcept
    if concept is not None:
        texts = []
        for coding in concept.coding or []:
            if coding.code:
                found = codes.result_from_code(str(coding.system or ""), str(coding.code))
                if found is not None:
                    return found
                texts.append(str(coding.code))
            if coding.display:
                texts.append(str(coding.display))
        if concept.text:
            texts.append(str(concept.text))
        for text in texts:
            found = codes.result_from_text(text)
            if found is not None:
                return found
        shown = texts[0] if texts else ""
        raise Refuse(f"{label}: the value {shown[:40]!r} is not a result we know (P, N, I or X)")
    if observation.valueString is not None:
        found = codes.result_from_text(str(observation.valueString))
        if found is not None:
            return found
        value = str(observation.valueString)[:40]
        raise Refuse(f"{label}: the value {value!r} is not a result we know (P, N, I or X)")
    raise Refuse(f"{label}: no coded or text value")


def _sample_id(specimen: Any, report: Any, observation: Any, label: str) -> str:
    candidates: list[Any] = []
    if specimen is not None:
        candidates.append(specimen.accessionIdentifier)
        candidates += list(specimen.identifier or [])
    if report is not None:
        candidates += list(report.identifier or [])
    candidates += list(observation.identifier or [])
    for identifier in candidates:
        if identifier is not None and identifier.value:
            return clean(str(identifier.value), f"{label}: the sample id") or ""
    raise Refuse(f"{label}: no sample id (Specimen, DiagnosticReport or Observation identifier)")


def _lab(observation: Any, report: Any, resources: dict[str, Any], lab_finess: str | None) -> str:
    performers = list(observation.performer or [])
    if report is not None:
        performers += list(report.performer or [])
    for reference in performers:
        organization = _target(resources, reference)
        for identifier in (organization.identifier or []) if organization is not None else []:
            value = str(identifier.value or "").strip().upper()
            system = str(identifier.system or "")
            if _FINESS.fullmatch(value) and (
                system in FINESS_SYSTEMS or "finess" in system.lower()
            ):
                return value
    if lab_finess is not None and _FINESS.fullmatch(lab_finess.strip().upper()):
        return lab_finess.strip().upper()
    raise Refuse("no FINESS for the lab (performing Organization identifier)")


def _patient(patient: Any) -> Patient:
    nir_value: str | None = None
    for identifier in patient.identifier or []:
        system = str(identifier.system or "")
        type_codes = {
            str(c.code).upper()
            for c in ((identifier.type.coding or []) if identifier.type is not None else [])
        }
        if system in _NIR_SYSTEMS or (
            system != f"urn:oid:{INS_NIA_OID}" and type_codes & {"INS-NIR", "INS", "NH"}
        ):
            nir_value = str(identifier.value or "")
            break
    nir, nir_valid = nir_of(nir_value)
    name = (patient.name or [None])[0]
    family = str(name.family) if name is not None and name.family else None
    given = " ".join(str(g) for g in (name.given or [])) if name is not None else None
    birth = patient.birthDate if isinstance(patient.birthDate, date) else None
    address = (patient.address or [None])[0]
    postcode = str(address.postalCode) if address is not None and address.postalCode else None
    phone = next(
        (str(t.value) for t in (patient.telecom or []) if t.system == "phone" and t.value), None
    )
    email = next(
        (str(t.value) for t in (patient.telecom or []) if t.system == "email" and t.value), None
    )
    return Patient(
        nir=nir,
        nir_valid=nir_valid,
        last_name=clean(family, "Patient.name.family"),
        first_name=clean(given, "Patient.name.given"),
        birth_date=birth,
        sex=sex_of(_GENDERS.get(str(patient.gender or "unknown"), "U")),
        postcode=clean(postcode, "Patient.address.postalCode"),
        phone=clean(phone, "Patient.telecom phone"),
        email=clean(email, "Patient.telecom email"),
    )
