"""HL7 v2 ACKs: the MSH is answered (sender and receiver swapped), MSA echoes MSH-10,
reasons are escaped."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from sidep.ack import (
    AckCode,
    build_ack,
    build_batch_ack,
    escape,
    is_oru,
    read_header,
    split_batch,
)
from tests.sidep.fakeparse import message

NOW = datetime(2026, 12, 10, 4, 8, 0, tzinfo=UTC)


def segments(ack: bytes) -> list[list[str]]:
    return [s.split("|") for s in ack.decode().split("\r") if s]


def test_an_accepted_message() -> None:
    header = read_header(message(control="CTRL-42"))
    assert header is not None and is_oru(header)
    msh, msa = segments(build_ack(header, AckCode.ACCEPTED, NOW, "A1"))
    assert msh[:6] == ["MSH", "^~\\&", "SIDEP", "SIDEP", "LABSYS", "750012345"]
    assert msh[6] == "20261210040800"
    assert msh[8:12] == ["ACK^R01^ACK", "A1", "P", "2.5"]
    assert msa == ["MSA", "AA", "CTRL-42", ""]


def test_an_error_carries_the_reason_escaped() -> None:
    header = read_header(message(control="C7"))
    ack = build_ack(header, AckCode.ERROR, NOW, "A2", "OBX-5 'x|y^z' is not a result")
    _msh, msa, err = segments(ack)
    assert msa[:3] == ["MSA", "AE", "C7"]
    assert msa[3] == "OBX-5 'x\\F\\y\\S\\z' is not a result"
    assert err[3] == "207^Application internal error^HL70357" and err[4] == "E"


def test_a_batch_file_is_answered_by_its_first_message() -> None:
    batch = b"FHS|^~\\&|LAB\rBHS|^~\\&|LAB\r" + message(control="B1")
    header = read_header(batch)
    assert header is not None and header.control_id == "B1"


def test_what_is_not_hl7_has_no_header() -> None:
    assert read_header(b"lab_finess;sample_id\n") is None
    assert read_header(b"") is None
    assert read_header(b"MSH") is None
    msh, msa, _err = segments(build_ack(None, AckCode.REJECTED, NOW, "A3", "no MSH"))
    assert msa[:2] == ["MSA", "AR"] and msh[8] == "ACK"


def test_other_delimiters_are_kept() -> None:
    header = read_header(b"MSH#*~\\&#APP#FAC#####ORU*R01#X9#T#2.3\r")
    assert header is not None and header.control_id == "X9" and is_oru(header)
    ack = build_ack(header, AckCode.ACCEPTED, NOW, "A4").decode()
    assert ack.startswith("MSH#*~\\&#SIDEP#SIDEP#APP#FAC#") and "#ACK*R01*ACK#A4#T#2.3\r" in ack


@given(st.binary(max_size=300))
def test_any_bytes_give_a_header_or_none(data: bytes) -> None:
    header = read_header(data)
    ack = build_ack(header, AckCode.REJECTED, NOW, "A5", "whatever")
    assert ack.startswith(b"MSH") and ack.endswith(b"\r")


@given(st.text(max_size=100))
def test_escaped_text_has_no_delimiter(text: str) -> None:
    header = read_header(message())
    assert header is not None
    escaped = escape(text, header)
    assert "|" not in escaped and "^" not in escaped and "~" not in escaped and "\r" not in escaped


def test_a_batch_file_is_split_into_its_batches_and_messages() -> None:
    data = (
        b"FHS|^~\\&|LAB|750012345|SIDEP|DGS|20261210||||FILE-7\r"
        b"BHS|^~\\&|LAB|750012345|SIDEP|DGS|20261210||||BATCH-1\r"
        + message(control="B1")
        + message(control="B2")
        + b"BTS|2\rBHS|^~\\&|LAB|750012345|||||||BATCH-2\r"
        + message(control="B3")
        + b"BTS|1\rFTS|2\r"
    )
    batch = split_batch(data)
    assert batch is not None and batch.header is not None
    assert batch.header.control_id == "FILE-7" and batch.header.sending_app == "LAB"
    assert [p.header.control_id for p in batch.batches if p.header] == ["BATCH-1", "BATCH-2"]
    assert [len(p.messages) for p in batch.batches] == [2, 1]
    assert batch.messages[0] == message(control="B1")
    assert split_batch(message()) is None  # a lone message is no batch
    assert split_batch(b"") is None


def test_a_response_batch_holds_every_ack_in_its_envelope() -> None:
    data = (
        b"FHS|^~\\&|LAB|750012345|SIDEP|DGS|20261210||||FILE-7\r"
        b"BHS|^~\\&|LAB|750012345|SIDEP|DGS|20261210||||BATCH-1\r"
        + message(control="B1")
        + message(control="B2")
        + b"BTS|2\rFTS|1\r"
    )
    batch = split_batch(data)
    assert batch is not None
    acks = [
        build_ack(read_header(batch.messages[0]), AckCode.ACCEPTED, NOW, "A1"),
        build_ack(read_header(batch.messages[1]), AckCode.ERROR, NOW, "A2", "OBX-5 wrong"),
    ]
    answer = segments(build_batch_ack(batch, acks, NOW, "R9"))
    assert [s[0] for s in answer] == ["FHS", "BHS", "MSH", "MSA", "MSH", "MSA", "ERR", "BTS", "FTS"]
    fhs, bhs = answer[0], answer[1]
    # sender and receiver swapped; FHS-11/BHS-11 ours, FHS-12/BHS-12 the file's own ids
    assert fhs[2:6] == ["SIDEP", "SIDEP", "LAB", "750012345"]
    assert (fhs[10], fhs[11]) == ("R9", "FILE-7")
    assert (bhs[10], bhs[11]) == ("R9.1", "BATCH-1")
    assert [s[1:3] for s in answer if s[0] == "MSA"] == [["AA", "B1"], ["AE", "B2"]]
    assert answer[-2] == ["BTS", "2"] and answer[-1] == ["FTS", "1"]


def test_a_batch_without_file_header_or_messages() -> None:
    batch = split_batch(b"BHS|^~\\&|LAB||||||||EMPTY\rBTS|0\r")
    assert batch is not None and batch.header is None and batch.messages == ()
    answer = segments(build_batch_ack(batch, [], NOW, "R1"))
    assert [s[0] for s in answer] == ["BHS", "BTS"] and answer[1] == ["BTS", "0"]
    assert answer[0][11] == "EMPTY"


@given(st.binary(max_size=300))
def test_any_bytes_split_as_a_batch_or_not(data: bytes) -> None:
    batch = split_batch(b"BHS|^~\\&\r" + data)
    assert batch is not None
    acks = [build_ack(read_header(m), AckCode.REJECTED, NOW, "A", "x") for m in batch.messages]
    answer = build_batch_ack(batch, acks, NOW, "R")
    # An FHS anywhere in the file is its file header: the answer then opens with one too.
    assert answer.startswith(b"FHS" if batch.header else b"BHS")
    assert answer.count(b"\rMSA|") == len(batch.messages)
