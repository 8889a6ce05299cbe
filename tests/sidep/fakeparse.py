"""A small test-only HL7 v2 reader for the transport tests (the real parsers of
``sidep.formats`` are tested on their own): one ORU^R01 with PID, OBR and OBX segments.

It reads MSH-10, PID-3 (NIR), PID-5 (name), PID-7 (birth date), PID-8 (sex), PID-11 (postcode),
OBR-3 (sample id), OBR-7 (sampling time), OBX-3 (LOINC), OBX-5 (``P``/``N``), OBX-11 (``F``/
``C``), and the lab's FINESS in MSH-4. A message without an OBX, or an OBX-5 other than P/N,
is refused whole.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sidep.model import (
    LabResult,
    Method,
    Parsed,
    Patient,
    Refusal,
    Result,
    Sex,
    SourceFormat,
    Status,
)


def message(
    control: str = "MSG1",
    sample: str = "S1",
    result: str = "P",
    status: str = "F",
    lab: str = "750012345",
    nir: str = "269054958815780",
    name: str = "DUPONT^ELODIE",
) -> bytes:
    """An ORU^R01 (v2.5) of one SARS-CoV-2 RT-PCR result."""
    segments = [
        f"MSH|^~\\&|LABSYS|{lab}|SIDEP|SIDEP|20261209120000||ORU^R01^ORU_R01|{control}|P|2.5",
        f"PID|1||{nir}^^^INS-NIR||{name}||19690522|F|||1 rue X^^Paris^^75013",
        f"OBR|1||{sample}|94500-6^SARS-CoV-2 RNA^LN|||20261209080000",
        f"OBX|1|CWE|94500-6^SARS-CoV-2 RNA^LN||{result}||||||{status}",
    ]
    return ("\r".join(segments) + "\r").encode()


def parse(data: bytes, where: str) -> Parsed:
    text = data.decode("utf-8", "replace")
    fields = {s[:3]: s.split("|") for s in text.replace("\n", "\r").split("\r") if s}
    try:
        msh, pid, obr, obx = fields["MSH"], fields["PID"], fields["OBR"], fields["OBX"]
        letter = obx[5]
        if letter not in ("P", "N"):
            return Parsed(refusals=(Refusal(where, f"OBX-5 {letter!r} is not a result"),))
        last, _, first = pid[5].partition("^")
        sampled = datetime.strptime(obr[7], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        postcode = pid[11].split("^")[4] if len(pid) > 11 else None
        result = LabResult(
            lab=msh[3],
            sample_id=obr[3],
            loinc=obx[3].split("^")[0],
            method=Method.PCR,
            result=Result(letter),
            sampled_at=sampled,
            validated_at=None,
            status=Status.CORRECTED if obx[11] == "C" else Status.FINAL,
            patient=Patient(
                nir=pid[3].split("^")[0] or None,
                nir_valid=True,
                last_name=last or None,
                first_name=first or None,
                birth_date=date.fromisoformat(f"{pid[7][:4]}-{pid[7][4:6]}-{pid[7][6:8]}"),
                sex=Sex(pid[8] or "U"),
                postcode=postcode,
            ),
            source=SourceFormat.HL7,
            dep=postcode[:2] if postcode else None,
            raw_ref=f"{where} OBX-3",
        )
    except (KeyError, IndexError, ValueError) as exc:
        return Parsed(refusals=(Refusal(where, f"unreadable ({type(exc).__name__})"),))
    return Parsed(results=(result,))


CSV_HEADER = (
    "lab_finess;sample_id;nir;last_name;first_name;birth_date;sex;postcode;sampled_at;"
    "validated_at;loinc;result"
)


def parse_csv(data: bytes, where: str) -> Parsed:
    """The issue's flat CSV file, each line its own message (test-only, no checks beyond
    what the tests need)."""
    lines = data.decode("utf-8").splitlines()
    if not lines or lines[0].strip() != CSV_HEADER:
        return Parsed(refusals=(Refusal(f"{where}:1", "not the SI-DEP CSV header"),))
    found: list[LabResult] = []
    refusals: list[Refusal] = []
    for number, line in enumerate(lines[1:], start=2):
        cells = line.split(";")
        try:
            lab, sample, nir, last, first, born, sex, post, sampled, valid, loinc, res = cells
            found.append(
                LabResult(
                    lab=lab, sample_id=sample, loinc=loinc, method=Method.PCR,
                    result=Result(res), sampled_at=datetime.fromisoformat(sampled),
                    validated_at=datetime.fromisoformat(valid) if valid else None,
                    status=Status.FINAL,
                    patient=Patient(
                        nir=nir or None, nir_valid=None, last_name=last or None,
                        first_name=first or None,
                        birth_date=date.fromisoformat(born) if born else None,
                        sex=Sex(sex), postcode=post or None,
                    ),
                    source=SourceFormat.CSV, dep=post[:2] if post else None,
                )
            )  # fmt: skip
        except ValueError as exc:
            refusals.append(Refusal(f"{where}:{number}", f"bad line ({type(exc).__name__})"))
    return Parsed(results=tuple(found), refusals=tuple(refusals))


def parse_fhir(data: bytes, where: str) -> Parsed:
    """A test-only stand-in of the FHIR parser: a ``Bundle`` whose ``id`` names the sample
    becomes one positive result; anything else is refused."""
    import json

    try:
        bundle = json.loads(data)
    except ValueError:
        return Parsed(refusals=(Refusal(where, "not JSON"),))
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        return Parsed(refusals=(Refusal(where, "not a FHIR Bundle"),))
    return parse(message(control=str(bundle.get("id")), sample=str(bundle.get("id"))), where)
