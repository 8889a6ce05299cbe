"""HL7 v2.5 ORU^R01: real messages from public projects, French INS identifiers, batches,
question lines, corrected results, and refusals of whole messages.

Fixtures (tests/sidep/data):
- ``reportstream_example.hl7``: CDCgov/prime-reportstream
  ``frontend-react-original/public/assets/hl7/Example-hl7-file.hl7`` (CC0, a US public-health
  project): an FHS/BHS batch with one antigen result whose LOINC is only in OBX-3, and four
  ask-at-order-entry OBX marked ``QST``;
- ``python_hl7_sample_oru.hl7`` and ``python_hl7_batch_adt.hl7``: johnpaulett/python-hl7
  ``tests/samples.py`` (``sample_hl7``, from the HL7 normative edition; ``sample_batch1``,
  from the Victorian VINAH sample messages).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sidep.formats import hl7
from sidep.formats.common import PARIS
from sidep.model import Method, Result, Sex, Status

DATA = Path(__file__).parent / "data"

# Our own French message: INS-NIR in PID-3, a Ct value and a question line besides the result.
FRENCH = (DATA / "french_oru.hl7").read_bytes().decode("utf-8")


def test_reportstream_batch_example() -> None:
    data = (DATA / "reportstream_example.hl7").read_bytes()
    (message,) = hl7.read_messages(data, "rs.hl7", lab_finess="750712184")
    assert message.control_id == "1234d1d1-95fe-462c-8ac6-46728dba581c"
    assert message.refusal is None and message.version == "2.5.1"
    assert message.sending_facility == "Winchester House"
    # the lab is identified by a US CLIA number, no FINESS: refused unless the transport knows it
    refused = hl7.parse(data, "rs.hl7")
    assert refused.results == () and "FINESS" in refused.refusals[0].reason
    parsed = hl7.parse(
        (DATA / "reportstream_example.hl7").read_bytes(), "rs.hl7", lab_finess="750712184"
    )
    (r,) = parsed.results
    assert r.loinc == "94558-4" and r.method is Method.ANTIGEN and r.result is Result.NEGATIVE
    assert r.sample_id == "1234d1d1-95fe-462c-8ac6-46728dba581c"
    assert r.sampled_at == datetime(2021, 8, 2, tzinfo=timezone(timedelta(hours=-5)))
    assert r.patient.last_name == "Bunny" and r.patient.sex is Sex.MALE
    assert r.patient.nir is None  # a local PI identifier is no NIR
    assert len(parsed.skipped) == 4 and all("ask-at-order-entry" in s for s in parsed.skipped)


def test_python_hl7_samples_are_refused_with_reasons() -> None:
    oru = hl7.parse((DATA / "python_hl7_sample_oru.hl7").read_bytes(), "oru.hl7")
    assert oru.results == ()
    (refusal,) = oru.refusals
    assert refusal.where == "oru.hl7 message CNTRL-3456"
    assert "birth date" in refusal.reason  # 196203520: month 35
    adt = hl7.parse((DATA / "python_hl7_batch_adt.hl7").read_bytes(), "adt.hl7")
    assert [r.reason for r in adt.refusals] == ["MSH-9 is 'ADT^A04', not ORU^R01"] * 2
    data = (DATA / "python_hl7_batch_adt.hl7").read_bytes()
    assert [m.ack_code for m in hl7.read_messages(data, "adt.hl7")] == ["AR", "AR"]
    undeclared = hl7.read_messages(FRENCH.encode("latin-1"), "f.hl7")[0]
    assert undeclared.ack_code == "AR" and undeclared.control_id == "MSG-001"


def test_a_french_message() -> None:
    parsed = hl7.parse(FRENCH.encode(), "f.hl7")
    assert parsed.refusals == ()
    (r,) = parsed.results
    assert r.lab == "750712184" and r.sample_id == "SMP-42" and r.status is Status.FINAL
    assert r.result is Result.POSITIVE and r.method is Method.PCR
    assert r.sampled_at == datetime(2020, 10, 1, 8, 30, tzinfo=PARIS)
    assert r.validated_at == datetime(2020, 10, 1, 18, 0, tzinfo=PARIS)
    p = r.patient
    assert p.nir == "295109912611193" and p.nir_valid is True
    assert (p.last_name, p.first_name, p.birth_date) == ("DUPONT", "CÉLINE", date(1995, 10, 1))
    assert p.postcode == "20000" and r.dep == "2A" and r.prescriber_rpps == "10003456789"
    assert any("cycle-threshold" in s for s in parsed.skipped)
    assert any("question" in s for s in parsed.skipped)


def test_latin1_declared_in_msh18_is_read_and_undeclared_is_refused() -> None:
    latin = FRENCH.replace("UNICODE UTF-8", "8859/1").encode("latin-1")
    (r,) = hl7.parse(latin, "f.hl7").results
    assert r.patient.first_name == "CÉLINE"
    undeclared = FRENCH.encode("latin-1")
    parsed = hl7.parse(undeclared, "f.hl7")
    assert parsed.results == () and "UTF-8" in parsed.refusals[0].reason


def test_bad_nir_key_is_flagged_and_nia_is_no_nir() -> None:
    bad = FRENCH.replace("295109912611193", "295109912611199")
    (r,) = hl7.parse(bad.encode(), "f.hl7").results
    assert r.patient.nir == "295109912611199" and r.patient.nir_valid is False
    nia = FRENCH.replace("1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9")
    (r,) = hl7.parse(nia.encode(), "f.hl7").results
    assert r.patient.nir is None


def test_corrected_and_text_values_and_deidentified_birth_date() -> None:
    msg = (
        FRENCH.replace("||||||F\rOBX|2", "||||||C\rOBX|2")
        .replace(
            "CWE|94500-6^SARS-CoV-2 ARN PCR^LN||260373001^Détecté^SCT", "ST|94500-6^PCR^LN||Négatif"
        )
        .replace("19951001", "1995")
    )
    (r,) = hl7.parse(msg.encode(), "f.hl7").results
    assert r.status is Status.CORRECTED and r.result is Result.NEGATIVE
    assert r.patient.birth_date is None


def test_alternate_coding_and_order_code_only() -> None:
    alt = FRENCH.replace("94500-6^SARS-CoV-2 ARN PCR^LN", "COV2^PCR COVID^L^94500-6^SARS-CoV-2^LN")
    (r,) = hl7.parse(alt.encode(), "f.hl7").results
    assert r.loinc == "94500-6"
    only_obr = "\r".join(
        s for s in FRENCH.split("\r") if not s.startswith(("OBX|2", "OBX|3"))
    ).replace("94500-6^SARS-CoV-2 ARN PCR^LN||", "COV2^PCR COVID^L||")
    (r,) = hl7.parse(only_obr.encode(), "f.hl7").results
    assert r.loinc == "94500-6"


def test_one_bad_result_refuses_its_whole_message_but_not_the_next() -> None:
    bad_status = FRENCH.replace("MSG-001", "MSG-002").replace("||||||F\rOBX|2", "||||||X\rOBX|2")
    bad_value = FRENCH.replace("MSG-001", "MSG-003").replace(
        "260373001^Détecté^SCT", "3092008^S aureus^SCT"
    )
    data = (FRENCH + bad_status + bad_value).encode()
    messages = hl7.read_messages(data, "f.hl7")
    assert [m.control_id for m in messages] == ["MSG-001", "MSG-002", "MSG-003"]
    assert messages[0].refusal is None
    assert [m.ack_code for m in messages] == ["AA", "AE", "AE"]
    assert "OBX-11" in (messages[1].refusal or "")
    assert "not a result we know" in (messages[2].refusal or "")
    parsed = hl7.parse(data, "f.hl7")
    assert len(parsed.results) == 1 and len(parsed.refusals) == 2


def test_structural_refusals() -> None:
    cases = {
        "no OBR": "\r".join(FRENCH.split("\r")[:2]),
        "no SARS-CoV-2 result": FRENCH.replace("94500-6", "1554-5"),
        "no sampling time": FRENCH.replace("202010010830", ""),
        "sample id": FRENCH.replace("CMD-1", "").replace("SMP-42", ""),
    }
    for expected, text in cases.items():
        parsed = hl7.parse(text.encode(), "f.hl7")
        assert parsed.results == (), expected
        assert expected in parsed.refusals[0].reason, (expected, parsed.refusals)


def test_message_control_id_and_junk() -> None:
    assert hl7.message_control_id(FRENCH.encode()) == "MSG-001"
    assert hl7.message_control_id(b"garbage") is None
    for junk in (b"", b"\x00\xff", b"MSH", b"PID|1||x", FRENCH.encode()[:150]):
        parsed = hl7.parse(junk, "j.hl7")
        assert parsed.results == () and parsed.refusals


# The PID layout of French IHE PAM messages (identity feeds of hospital software) as quoted in
# public integration code (IHE PAM France / ANS Gazelle test samples; the repository could not
# be resolved): an empty PID-3 repetition, the INS-NIR with trailing components, the usual
# name (D) before the birth name with first names (L), a birthplace address after the home one,
# MSH-18 8859/15.
PAM_PID = (
    "PID|1||442777^^^CEGI&&M^PI~~248098060602525^^^ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO"
    "^INS^^^~1000345108^^^CEGI&&M^PIP||SECLET^^^^MME^^D~SECLET^MARYSE^MARYSE BERTHE ALICE^^^^L"
    "||19480909|F|||7 RUE DU BOUJONNIER^^FORMERIE^^60220^^H~^^^^^^BDL^^80606||^PRN^PH^^^^^^^^^"
    "0608987212~~~^NET^Internet^MARYSE.SECLET@WANADOO.FR|||||R000171104^^^CEGI&&M^AN|||||"
    "OISEMONT (80140)|||||||||VALI"
)


def test_french_pam_patient_segment() -> None:
    lines = FRENCH.split("\r")
    lines[0] = lines[0].replace("UNICODE UTF-8", "8859/15")
    lines[1] = PAM_PID.replace("BOUJONNIER", "BOUJONNIÈR")
    (r,) = hl7.parse("\r".join(lines).encode("iso-8859-15"), "pam.hl7").results
    p = r.patient
    assert (p.last_name, p.first_name) == ("SECLET", "MARYSE")
    assert p.birth_date == date(1948, 9, 9) and p.sex is Sex.FEMALE
    assert p.postcode == "60220" and r.dep == "60"
    assert p.nir == "248098060602525" and p.nir_valid is True


def test_gazelle_sample_nir_has_a_wrong_key_and_is_flagged() -> None:
    lines = FRENCH.split("\r")
    lines[1] = (
        "PID|||13684^^^GZL_INTEROP&2.16.840.1.113883.2.8.3.7&ISO^PI~294058173502641^^^"
        "ASIP-SANTE-INS-NIR&1.2.250.1.213.1.4.8&ISO^INS||DENIS^Huguette^^^^^L|PEREIRA^^^^^^M|"
        "19911108|F|||14 rue de la Paix^^MARSEILLE^^13002^FRA^H"
    )
    (r,) = hl7.parse("\r".join(lines).encode(), "gazelle.hl7").results
    assert r.patient.nir == "294058173502641" and r.patient.nir_valid is False
    assert (r.patient.last_name, r.patient.first_name, r.dep) == ("DENIS", "Huguette", "13")
