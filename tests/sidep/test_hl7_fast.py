"""The fast HL7 v2 reader of ``sidep.formats.hl7`` against python-hl7's parser (the reference):
every fixture and generated messages (mutated real messages, odd separators, escapes) must give
identical messages, results and refusals; escape sequences are read as HL7 v2.5 chapter 2 says.
"""

from __future__ import annotations

from pathlib import Path

import hl7 as python_hl7
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sidep.bench import message as bench_message
from sidep.formats import hl7

DATA = Path(__file__).parent / "data"
FIXTURES = sorted(DATA.glob("*.hl7"))
FRENCH = (DATA / "french_oru.hl7").read_bytes().decode("utf-8")


def same(data: bytes, lab_finess: str | None = None) -> list[hl7.Message]:
    fast = hl7.read_messages(data, "x.hl7", lab_finess)
    reference = hl7.read_messages(data, "x.hl7", lab_finess, reference=True)
    assert fast == reference
    assert hl7.parse(data, "x.hl7", lab_finess) == hl7.parse(
        data, "x.hl7", lab_finess, reference=True
    )
    return fast


def test_every_fixture_reads_the_same() -> None:
    assert len(FIXTURES) >= 4
    for path in FIXTURES:
        data = path.read_bytes()
        for lab in (None, "750712184"):
            messages = same(data, lab)
            assert messages
        for segments in hl7.split_messages(data):
            text = b"\r".join(segments).decode("utf-8", "replace")
            if text.startswith("MSH"):
                assert hl7._fast_split(text) is not None  # the fast reader, not the fallback
    (french,) = same(FRENCH.encode())
    assert french.ack_code == "AA" and len(french.results) == 1


def test_the_benchmark_message_reads_the_same() -> None:
    for n in range(50):
        (message,) = same(bench_message(n, n % 3 == 0))
        assert message.ack_code == "AA"


def test_escape_sequences_are_read() -> None:
    lines = FRENCH.split("\r")
    pid = next(i for i, line in enumerate(lines) if line.startswith("PID"))
    fields = lines[pid].split("|")
    fields[5] = "DUPONT\\T\\MARTIN\\E\\^C\\S\\LINE"  # DUPONT&MARTIN\ , C^LINE
    lines[pid] = "|".join(fields)
    (r,) = hl7.parse("\r".join(lines).encode(), "f.hl7").results
    assert r.patient.last_name == "DUPONT&MARTIN\\"
    assert r.patient.first_name == "C^LINE"
    (message,) = same("\r".join(lines).encode())
    assert message.ack_code == "AA"
    seps = hl7._Seps(field="|", rep="~", comp="^", sub="&", esc="\\")
    assert hl7.unescape("A\\F\\B\\R\\C", seps) == "A|B~C"
    assert hl7.unescape("A\\H\\B\\N\\", seps) == "A\\H\\B\\N\\"  # highlighting kept as written
    assert hl7.unescape("A\\F", seps) == "A\\F"  # no closing escape: kept
    assert hl7.unescape("no escape", seps) == "no escape"


def test_declared_separators_are_used() -> None:
    head, rest = FRENCH.split("^~\\&", 1)
    rest = rest.replace("^", "$").replace("~", "*").replace("&", "@")
    text = head + "$*#@" + rest
    (message,) = same(text.encode())
    assert message.ack_code == "AA" and message.results[0].patient.last_name == "DUPONT"


@given(
    st.lists(
        st.one_of(
            st.text(alphabet="ABN01FSTRE^~&|# ", max_size=5),
            st.sampled_from(["\\F\\", "\\S\\", "\\T\\", "\\R\\", "\\E\\"]),
        ),
        max_size=8,
    ).map("".join)
)
def test_unescape_agrees_with_python_hl7(value: str) -> None:
    # python-hl7 also maps highlighting and formatting sequences and drops unclosed ones: compare
    # on the five sequences of the separators (2.7.4), which both read the same way
    seps = hl7._Seps(field="|", rep="~", comp="^", sub="&", esc="\\")
    reference = python_hl7.parse("MSH|^~\\&|A\rPID|1")
    assert hl7.unescape(value, seps) == reference.unescape(value)


_NOISE = st.text(alphabet="|^~\\&#$AZaz09 .-PNFCéÉ\x00\x7f", max_size=12)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A real message with some values replaced by noise, possibly with other separators."""
    base = draw(st.sampled_from([FRENCH, bench_message(7, True).decode()]))
    lines = base.strip("\r").split("\r")
    for _ in range(draw(st.integers(0, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        fields = lines[i].split("|")
        j = draw(st.integers(1 if i else 3, len(fields) + 2))
        fields += [""] * (j + 1 - len(fields))
        fields[j] = draw(_NOISE)
        lines[i] = "|".join(fields)
    if draw(st.booleans()):
        head = lines[0]
        lines[0] = head[:4] + draw(st.text(alphabet="^~\\&|#$A", max_size=6)) + head[8:]
    if draw(st.booleans()):
        lines.insert(draw(st.integers(1, len(lines))), draw(_NOISE))
    return "\r".join(lines).encode()


@settings(max_examples=300, deadline=None)
@given(mutated(), st.sampled_from([None, "750712184"]))
def test_mutated_messages_read_the_same(data: bytes, lab: str | None) -> None:
    same(data, lab)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200).map(lambda b: b"MSH" + b))
@example(b"MSH\x00\x01\x02\x01\x03\r\x00")  # MSH-2 running past the segment's end
def test_junk_after_msh_reads_the_same(data: bytes) -> None:
    same(data)
