"""Simulated phones' tuples table and the HELLOs built from it."""

import numpy as np

from client_sim.phones import SimPhone, TupleTable, broadcast_hellos
from protocol.epochs import REFERENCE_TIME_START, epoch_start
from protocol.hello import build_hello
from protocol.tuples import TupleColumns
from protocol.types import MacKey

FIRST = 5000


def phone(index: int, table: TupleTable) -> SimPhone:
    p = SimPhone(index, table, "http://127.0.0.1:1")
    p.time_start = REFERENCE_TIME_START
    return p


def test_a_sim_phone_broadcasts_the_hello_of_its_tuple_and_key() -> None:
    table = TupleTable(3, FIRST, 10)
    ebid, ecc = bytes(range(1, 9)), b"\x21"
    table.put(1, TupleColumns(np.array([FIRST + 2]), ebid, ecc))
    sender = phone(1, table)
    at = epoch_start(FIRST + 2, REFERENCE_TIME_START) + 7
    assert sender.current_hello(at) is None  # no key yet
    sender.hello_key = MacKey(bytes(32))
    assert sender.current_hello(at) == build_hello(sender.hello_key, ecc, ebid, at).to_bytes()
    assert sender.current_hello(at + 900) is None  # no tuple for the next epoch
    assert sender.current_hello(epoch_start(FIRST + 20, REFERENCE_TIME_START)) is None  # outside


def test_broadcast_hellos_keeps_only_senders_with_key_and_tuple() -> None:
    table = TupleTable(3, FIRST, 10)
    phones = {i: phone(i, table) for i in range(3)}
    for i in range(3):
        table.put(i, TupleColumns(np.array([FIRST]), bytes([i]) * 8, bytes([i])))
    phones[0].hello_key = MacKey(b"\x00" * 32)
    phones[2].hello_key = MacKey(b"\x02" * 32)
    at = epoch_start(FIRST, REFERENCE_TIME_START)
    times = np.array([at, at, at + 900, at + 1], dtype=np.int64)
    built, hellos = broadcast_hellos(
        phones, table, np.array([0, 1, 2, 2]), times, REFERENCE_TIME_START
    )
    # 1 has no key; the third HELLO falls in an epoch 2 has no tuple for.
    assert built.tolist() == [True, False, False, True]
    key0, key2 = phones[0].hello_key, phones[2].hello_key
    assert hellos == (
        build_hello(key0, b"\x00", bytes(8), at).to_bytes()
        + build_hello(key2, b"\x02", b"\x02" * 8, at + 1).to_bytes()
    )
