"""Reported contacts: parsing, and the HELLO checks the server applies."""

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from protocol.contacts import Contact, Drop, HelloRecord, parse_contacts, valid_records
from protocol.epochs import REFERENCE_TIME_START, epoch_of
from protocol.errors import ProtocolError
from protocol.hello import build_hello
from protocol.types import MacKey

KEY = MacKey(bytes(range(32)))
NOW = REFERENCE_TIME_START + 96 * 900 * 200 + 450  # mid-epoch


def heard(sent: int, received: int, rssi: int = -50, key: MacKey = KEY) -> HelloRecord:
    hello = build_hello(key, b"\x21", bytes(8), sent)
    return HelloRecord(received, hello.time, hello.mac, rssi)


def test_valid_hellos_are_kept() -> None:
    contact = Contact(b"\x21", bytes(8), ())
    contact = Contact(bytes(8), b"\x21", (heard(NOW, NOW + 1), heard(NOW + 60, NOW + 62)))
    kept, dropped = valid_records(
        contact, epoch_of(NOW, REFERENCE_TIME_START), KEY, REFERENCE_TIME_START, 180
    )
    assert kept == list(contact.records) and not dropped


def test_each_failure_is_counted_by_reason() -> None:
    records = (
        heard(NOW, NOW + 500),  # replayed long after sending
        heard(NOW, NOW, key=MacKey(bytes(32))),  # forged MAC
        heard(NOW + 3 * 900, NOW + 3 * 900),  # received three epochs after the EBID's
        heard(NOW, NOW),
    )
    contact = Contact(bytes(8), b"\x21", records)
    kept, dropped = valid_records(
        contact, epoch_of(NOW, REFERENCE_TIME_START), KEY, REFERENCE_TIME_START, 180
    )
    assert kept == [records[3]]
    assert dropped == {Drop.STALE_TIME: 1, Drop.BAD_MAC: 1, Drop.EPOCH_DRIFT: 1}


def test_fields_round_trip() -> None:
    contact = Contact(bytes(range(8)), b"\x21", (heard(NOW, NOW + 2, -61),))
    assert parse_contacts([contact.to_fields()]) == [contact]
    assert contact.claimed_epoch(REFERENCE_TIME_START) == epoch_of(NOW + 2, REFERENCE_TIME_START)


json_values = st.none() | st.booleans() | st.integers() | st.text(max_size=20) | st.floats()
contact_like = st.fixed_dictionaries(
    {},
    optional={
        "ebid": json_values,
        "ecc": json_values,
        "ids": st.lists(
            st.dictionaries(
                st.sampled_from(
                    ["timeCollectedOnDevice", "timeFromHelloMessage", "mac", "rssiCalibrated"]
                ),
                json_values,
            ),
            max_size=3,
        )
        | json_values,
    },
)


@given(st.lists(contact_like, max_size=3) | json_values)
def test_parser_raises_only_protocol_errors(items: object) -> None:
    with contextlib.suppress(ProtocolError):
        parse_contacts(items)
