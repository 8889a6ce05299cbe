"""The flat CSV file of small labs (issue 17): ``;``-separated, UTF-8, one header line, exactly

    lab_finess;sample_id;nir;last_name;first_name;birth_date;sex;postcode;sampled_at;validated_at;loinc;result

ISO dates and date-times (local French time when no offset is written), ``sex`` M/F/U,
``result`` P/N/I/X. Each line is its own unit: a bad line is refused with ``file:line`` and its
reason, the others are kept. A wrong header (wrong columns or delimiter) refuses the file.
A line that is not UTF-8 is refused (no guessing of Latin-1: a name read in the wrong encoding
would be a wrong pseudonym).
"""

from __future__ import annotations

from sidep import codes
from sidep.formats.common import (
    Refuse,
    clean,
    finess_of,
    iso_date,
    iso_datetime,
    make_result,
    nir_of,
    sex_of,
    too_big,
)
from sidep.model import LabResult, Parsed, Patient, Refusal, Result, SourceFormat, Status

COLUMNS = (
    "lab_finess",
    "sample_id",
    "nir",
    "last_name",
    "first_name",
    "birth_date",
    "sex",
    "postcode",
    "sampled_at",
    "validated_at",
    "loinc",
    "result",
)
HEADER = ";".join(COLUMNS)


def parse(data: bytes, where: str) -> Parsed:
    """Every line of a CSV file: its results, the refused lines, the skipped ones."""
    big = too_big(data)
    if big is not None:
        return Parsed(refusals=(Refusal(where, big),))
    lines = data.split(b"\n")
    header = lines[0].removeprefix(b"\xef\xbb\xbf").rstrip(b"\r")
    if header.decode("utf-8", "replace").strip() != HEADER:
        return Parsed(
            refusals=(Refusal(f"{where}:1", f"the header line is not exactly {HEADER!r}"),)
        )
    results: list[LabResult] = []
    refusals: list[Refusal] = []
    skipped: list[str] = []
    for number, raw in enumerate(lines[1:], start=2):
        line_bytes = raw.rstrip(b"\r")
        if not line_bytes.strip():
            continue
        at = f"{where}:{number}"
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError:
            refusals.append(Refusal(at, "the line is not UTF-8"))
            continue
        try:
            fields = line.split(";")
            if len(fields) != len(COLUMNS):
                raise Refuse(f"{len(fields)} fields where the header has {len(COLUMNS)}")
            row = dict(zip(COLUMNS, fields, strict=True))
            loinc = clean(row["loinc"], "loinc", required=True) or ""
            not_result = codes.not_a_result_reason(loinc)
            if not_result is not None:
                skipped.append(f"{at}: {not_result}")
                continue
            results.append(_result(row, loinc, at))
        except Refuse as refused:
            refusals.append(Refusal(at, refused.reason))
    return Parsed(tuple(results), tuple(refusals), tuple(skipped))


def _result(row: dict[str, str], loinc: str, at: str) -> LabResult:
    letter = (row["result"] or "").strip().upper()
    if letter not in {"P", "N", "I", "X"}:
        raise Refuse(f"result is not P, N, I or X: {letter[:10]!r}")
    nir, nir_valid = nir_of(row["nir"])
    birth = clean(row["birth_date"], "birth_date")
    postcode = clean(row["postcode"], "postcode")
    if postcode is not None and not (len(postcode) == 5 and postcode.isdigit()):
        raise Refuse(f"postcode is not 5 digits: {postcode[:10]!r}")
    validated = clean(row["validated_at"], "validated_at")
    patient = Patient(
        nir=nir,
        nir_valid=nir_valid,
        last_name=clean(row["last_name"], "last_name"),
        first_name=clean(row["first_name"], "first_name"),
        birth_date=iso_date(birth, "birth_date") if birth else None,
        sex=sex_of(row["sex"]),
        postcode=postcode,
    )
    return make_result(
        lab=finess_of(row["lab_finess"]),
        sample_id=clean(row["sample_id"], "sample_id", required=True) or "",
        loinc=loinc,
        result=Result(letter),
        sampled_at=iso_datetime(
            clean(row["sampled_at"], "sampled_at", required=True) or "", "sampled_at"
        ),
        validated_at=iso_datetime(validated, "validated_at") if validated else None,
        status=Status.FINAL,
        patient=patient,
        source=SourceFormat.CSV,
        raw_ref=at,
    )
