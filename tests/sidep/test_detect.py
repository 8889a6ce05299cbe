"""Format detection, ``parse_any``, and hostile input: whatever the bytes, a refusal with a
reason and never an exception."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sidep.formats import common
from sidep.formats.csvfile import HEADER
from sidep.formats.detect import detect, parse_any
from sidep.model import Parsed, SourceFormat

DATA = Path(__file__).parent / "data"
CSV_LINE = "750712184;S-1;;Dupont;Jean;1980-01-02;M;69003;2020-11-02T09:00;;94558-4;N"


def test_detection() -> None:
    assert detect((DATA / "reportstream_example.hl7").read_bytes()) is SourceFormat.HL7
    assert detect(b"\x0bMSH|^~\\&|A") is SourceFormat.HL7
    assert detect(b"BHS|^~\\&|") is SourceFormat.HL7
    assert detect(b"H|~^\\&|||LAB~Labo|||ORU") is SourceFormat.HPRIM
    assert detect(b' \n{"resourceType": "Bundle"}') is SourceFormat.FHIR
    assert detect(b"\xef\xbb\xbf" + HEADER.encode() + b"\r\n") is SourceFormat.CSV
    for other in (b"", b"hello", b"MSHX", b"H|||||", b"lab_finess;sample_id\n", b"<Bundle/>"):
        assert detect(other) is None


def test_parse_any_detects_and_reads() -> None:
    parsed = parse_any((HEADER + "\n" + CSV_LINE + "\n").encode(), "f.csv")
    assert len(parsed.results) == 1 and parsed.results[0].dep == "69"
    data = (DATA / "reportstream_example.hl7").read_bytes()
    parsed = parse_any(data, "rs", lab_finess="690000880")
    assert len(parsed.results) == 1 and parsed.results[0].lab == "690000880"


def test_parse_any_refusals() -> None:
    assert "not a format" in parse_any(b"hello", "x").refusals[0].reason
    # a CSV read as HL7 because the caller said so
    wrong = parse_any((HEADER + "\n" + CSV_LINE).encode(), "x", SourceFormat.HL7)
    assert wrong.results == () and wrong.refusals
    assert "format form" in parse_any(b"x", "x", SourceFormat.FORM).refusals[0].reason


def test_huge_input_is_refused_before_reading() -> None:
    big = b"MSH|" + b"x" * (common.MAX_BYTES)
    parsed = parse_any(big, "big.hl7")
    assert parsed.results == () and "over the limit" in parsed.refusals[0].reason


def _never_raises(data: bytes, fmt: SourceFormat | None) -> None:
    parsed = parse_any(data, "fuzz", fmt)
    assert isinstance(parsed, Parsed)
    for refusal in parsed.refusals:
        assert refusal.reason


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([None, *SourceFormat]))
def test_no_bytes_raise(data: bytes, fmt: SourceFormat | None) -> None:
    _never_raises(data, fmt)


_HL7_PIECES = st.sampled_from(
    [
        "MSH|^~\\&|A|750712184|B|C|20201001||ORU^R01|X|P|2.5",
        "PID|1||295109912611193^^^N&1.2.250.1.213.1.4.8&ISO^INS||A^B||19800101|F|||^^^^75011",
        "ORC|RE|1|2",
        "OBR|1|1|2|94500-6^x^LN|||202010010830",
        "OBX|1|CWE|94500-6^x^LN||260373001^D^SCT||||||F",
        "OBX|2|ST|94558-4^x^LN||positif||||||C",
        "SPM|1|S||x|||||||||||||202010010830",
        "BHS|^~\\&",
        "|",
        "^~&\\",
        "\x00",
        "é",
        "",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_HL7_PIECES, max_size=12), st.sampled_from(["\r", "\n", "\r\n", "|"]))
def test_no_shuffled_hl7_raises(pieces: list[str], sep: str) -> None:
    _never_raises(sep.join(pieces).encode(), None)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=";0123456789-:TPNAZé \x00", max_size=80), max_size=5))
def test_no_csv_lines_raise(lines: list[str]) -> None:
    _never_raises("\n".join([HEADER, *lines]).encode(), SourceFormat.CSV)
