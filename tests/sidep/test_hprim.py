"""HPRIM Santé: the published example of aiderpmsi/libHprim, a French COVID result file, the
swapped delimiters, ``A|`` continuation lines, ISO-8859-1, and refusals.

``libhprim_example.hpr``: the ORU message (version ``H2.1~C``) of aiderpmsi/libHprim
``src/test/java/com/github/aiderpmsi/hprim/parser/HPRIMSParserTest.java``; the expected values
below are those of that test's control XML (field numbering with the record id as field 1).
``french_covid.hpr``: ours, ISO-8859-1, a PCR result coded in LOINC/SNOMED CT, a Ct value, a
comment and a continuation line.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sidep.formats import hprim
from sidep.formats.detect import detect, parse_any
from sidep.model import Method, Result, Sex, SourceFormat, Status

DATA = Path(__file__).parent / "data"
LIBHPRIM = (DATA / "libhprim_example.hpr").read_bytes()
FRENCH = (DATA / "french_covid.hpr").read_bytes()


def test_libhprim_example_splits_as_libhprim_does() -> None:
    (message,) = hprim.messages(hprim.decode(LIBHPRIM))
    h, p, obr, obx1, c, obx2, obx3, end = message.records
    assert [r.kind for r in message.records] == ["H", "P", "OBR", "OBX", "C", "OBX", "OBX", "L"]
    assert h.get(3) == "Test1.HPR" and (h.get(5, comp=1), h.get(5, comp=2)) == ("PO", "LABM")
    assert (h.get(13, comp=1), h.get(13, comp=2), h.get(14)) == ("H2.1", "C", "201204292059")
    assert (p.get(6, comp=1), p.get(6, comp=2), p.get(7)) == ("GAULLE", "MARECHAL", "PIT")
    assert (p.get(8), p.get(9), p.get(11, comp=3), p.get(11, comp=5)) == (
        "19370325",
        "F",
        "PARIS",
        "75000",
    )
    assert p.get(26, comp=3) == "TEST"
    # '^' separates repetitions, '~' components: nine requested tests
    assert obr.repetitions(5) == 9
    assert (obr.get(5, rep=2, comp=1), obr.get(5, rep=9, comp=2)) == ("TGP1", "TROPV")
    assert (obr.get(3, comp=1), obr.get(4, comp=2)) == ("idechantillo", "20428E9575")
    # the A| line continues OBR.17.5: "Cliniq" + "ue HP"
    assert (obr.get(17, comp=5), obr.get(17, comp=6), obr.get(18)) == (
        "Clinique HP",
        "L",
        "0468638395",
    )
    assert (obr.get(26), obr.get(33), len(obr.fields)) == ("F", "VBIO", 33)
    assert (obx1.get(3), obx1.get(4, comp=2), obx1.get(6), obx1.get(7)) == (
        "NM",
        "TGO ADVIA",
        "16",
        "UI/l",
    )
    assert obx1.get(16, comp=6) == "P" and c.get(4) == "Anemie macrocytaire"
    assert obx2.get(4, comp=2) == "  Hematocrite" and obx3.get(6, comp=2) == "AL213202.j1"
    assert end.get(2) == "1"


def test_libhprim_example_has_no_covid_result() -> None:
    parsed = hprim.parse(LIBHPRIM, "t.hpr")
    assert parsed.results == ()
    assert "no SARS-CoV-2 result" in parsed.refusals[0].reason


def test_french_covid_file() -> None:
    assert detect(FRENCH) is SourceFormat.HPRIM
    parsed = parse_any(FRENCH, "f.hpr")
    assert parsed.refusals == ()
    (r,) = parsed.results
    assert r.lab == "750712184" and r.sample_id == "PRL-0042" and r.loinc == "94500-6"
    assert r.method is Method.PCR and r.result is Result.POSITIVE and r.status is Status.FINAL
    assert r.sampled_at.isoformat() == "2020-10-01T08:30:00+02:00"
    p = r.patient
    assert p.first_name == "CÉLINE" and p.last_name == "DUPONT"  # read as ISO-8859-1
    assert p.nir == "295109912611193" and p.nir_valid is True
    assert p.birth_date == date(1995, 10, 1) and p.sex is Sex.FEMALE and r.dep == "75"
    assert r.prescriber_rpps == "10003456789"
    assert any("cycle-threshold" in s for s in parsed.skipped)


def test_the_same_file_in_utf8_and_with_lf() -> None:
    utf8 = FRENCH.decode("latin-1").replace("\r\n", "\n").encode("utf-8")
    (r,) = hprim.parse(utf8, "f.hpr").results
    assert r.patient.first_name == "CÉLINE"


def test_other_delimiters_are_read_from_the_header() -> None:
    text = FRENCH.decode("latin-1").replace("|", "!")
    (r,) = hprim.parse(text.encode("latin-1"), "f.hpr").results
    assert r.sample_id == "PRL-0042"


def test_text_values_and_two_messages() -> None:
    text = FRENCH.decode("latin-1")
    negative = text.replace(
        "CE|94500-6~SARS-CoV-2 ARN (RT-PCR)~LN||260373001~Détecté~SCT", "ST|94500-6~PCR~L||NEGATIF"
    )
    corrected = negative.replace("||||||F|||202010011800\r\nC|", "||||||C|||202010011800\r\nC|")
    parsed = hprim.parse((text + corrected).encode("latin-1"), "f.hpr")
    assert [r.result for r in parsed.results] == [Result.POSITIVE, Result.NEGATIVE]
    assert parsed.results[1].status is Status.CORRECTED


def test_refusals() -> None:
    text = FRENCH.decode("latin-1")
    cases = {
        "no L record": text.replace("L|1\r\n", ""),
        "before any H": "P|1\r\n" + text,
        "5 distinct delimiters": text.replace("H|~^\\&", "H|~~\\&"),
        "not a result we know": text.replace("260373001~Détecté~SCT", "X1~Bof~L"),
        "status": text.replace("||||||F|||202010011800\r\nC|", "||||||D|||202010011800\r\nC|"),
        "no FINESS": text.replace("750712184~", "LAB~"),
        "truncated": text[: len(text) // 2],
    }
    for expected, bad in cases.items():
        parsed = hprim.parse(bad.encode("latin-1"), "f.hpr")
        assert parsed.results == (), expected
        assert parsed.refusals, expected


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from([*FRENCH.split(b"\r\n"), b"A|", b"H|", b"\xff", b"OBX|1|CE"]), max_size=12
    )
)
def test_no_shuffled_records_raise(lines: list[bytes]) -> None:
    parsed = hprim.parse(b"\r\n".join(lines), "fuzz")
    assert all(r.reason for r in parsed.refusals)
