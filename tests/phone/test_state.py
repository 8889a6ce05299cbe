"""phone.state.PhoneState: what the app holds between requests, against the server's side of
the protocol (keys agreed, tuples minted and sealed as the server does)."""

from __future__ import annotations

import random
from datetime import date

import pytest

from phone.state import NotRegistered, PhoneState
from protocol.auth import AuthRequest, RequestKind, verify_request_mac
from protocol.ebid import FRANCE, decrypt_ebid
from protocol.epochs import EPOCH_DURATION, EPOCHS_PER_DAY, REFERENCE_TIME_START, epoch_start
from protocol.errors import ProtocolError
from protocol.hello import HELLO_SIZE, Hello, verify_hello
from protocol.registration import agree, private_key_from_random, public_key_spki
from protocol.scoring import CONTAGIOUS_PERIOD_DAYS
from protocol.tuples import mint, seal_bundle
from protocol.types import EbidKey, FederationKey, MacKey, TupleKey, id_a

T0 = REFERENCE_TIME_START
DAY = EPOCHS_PER_DAY * EPOCH_DURATION
FIRST = 400 * EPOCHS_PER_DAY  # an epoch some 400 days after the service start
NOW = epoch_start(FIRST, T0) + 100  # 100 s into it


class Server:
    """The server's side, as far as a phone sees it: its key, K_S, K_G, minting."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.key = private_key_from_random(self.rng.randbytes)
        self.k_s = EbidKey(self.rng.randbytes(24))
        self.k_g = FederationKey(self.rng.randbytes(32))
        self.owner = id_a(self.rng.randbytes(5))
        self.k_a: MacKey | None = None
        self.k_ea: TupleKey | None = None

    def register(self, phone_spki: bytes, epochs: range) -> str:
        """K_A and K_EA agreed with the phone; a bundle of ``epochs``' tuples."""
        self.k_a, self.k_ea = agree(self.key, phone_spki)
        return self.bundle(epochs)

    def bundle(self, epochs: range, k_ea: TupleKey | None = None) -> str:
        minted = mint([(self.owner, epochs)], self.key_of_day, self.k_g, FRANCE, T0)[0]
        key = k_ea or self.k_ea
        assert key is not None
        return seal_bundle(key, minted, self.rng.randbytes(12))

    def key_of_day(self, day: date) -> EbidKey:
        return self.k_s  # one key is enough here


def registered(server: Server, epochs: range = range(FIRST, FIRST + 8)) -> PhoneState:
    phone_key = private_key_from_random(random.Random(2).randbytes)
    bundle = server.register(public_key_spki(phone_key), epochs)
    state = PhoneState()
    state.enrol(phone_key, public_key_spki(server.key), T0, bundle, NOW)
    return state


def test_enrol_derives_the_server_s_keys_and_keeps_the_tuples() -> None:
    server = Server()
    state = registered(server)
    assert state.registered and (state.k_a, state.k_ea) == (server.k_a, server.k_ea)
    assert state.time_start == T0 and state.current_epoch(NOW) == FIRST
    assert sorted(state.tuples) == list(range(FIRST, FIRST + 8))
    for epoch, t in state.tuples.items():  # each EBID is the server's for that epoch
        assert decrypt_ebid(server.k_s, t.ebid) == (epoch, server.owner)


def test_a_new_bundle_adds_tuples_and_forgets_those_past() -> None:
    server = Server()
    state = registered(server)
    later = NOW + 6 * EPOCH_DURATION  # epoch FIRST + 6
    state.store_bundle(server.bundle(range(FIRST + 8, FIRST + 12)), later)
    assert sorted(state.tuples) == list(range(FIRST + 5, FIRST + 12))  # from the one before


def test_all_tuples_past_keeps_the_last_one() -> None:
    server = Server()
    state = registered(server)
    state.store_bundle(server.bundle(range(FIRST, FIRST + 2)), NOW + DAY)
    assert sorted(state.tuples) == [FIRST + 7]  # the apps' fallback for their requests


def test_a_bundle_under_another_key_is_refused() -> None:
    server = Server()
    state = registered(server)
    before = dict(state.tuples)
    with pytest.raises(ProtocolError):
        state.store_bundle(server.bundle(range(FIRST, FIRST + 2), TupleKey(bytes(32))), NOW)
    assert state.tuples == before


def test_current_hello_is_the_current_tuple_s_and_verifies() -> None:
    server = Server()
    state = registered(server)
    for now in (NOW, NOW + 3 * EPOCH_DURATION + 17):
        raw = state.current_hello(now)
        assert raw is not None and len(raw) == HELLO_SIZE
        hello = Hello.parse(raw)
        current = state.current_tuple(now)
        assert current is not None and (hello.ebid, hello.ecc) == (current.ebid, current.ecc)
        assert server.k_a is not None
        verify_hello(server.k_a, hello, now + 2)  # the server accepts it when reported
    assert state.current_hello(NOW + DAY) is None  # no tuple for that epoch
    assert PhoneState().current_hello(NOW) is None  # not registered


@pytest.mark.parametrize("size", [0, 15, 17, 32])
def test_a_malformed_hello_is_not_kept(size: int) -> None:
    state = PhoneState()
    state.record_hello(bytes(size), NOW, -60)
    assert state.heard == {} and state.contacts(NOW) == []


def test_malformed_hellos_heard_together_are_refused_whole() -> None:
    server = Server()
    hello = registered(server).current_hello(NOW)
    assert hello is not None
    state = PhoneState()
    with pytest.raises(ProtocolError):
        state.record_hellos(hello + hello[:15], [NOW, NOW], [-60, -60])
    assert state.heard == {}
    state.record_hellos(hello + hello, [NOW, NOW + 1], [-60, -61])
    [contact] = state.contacts(NOW + 1)
    assert [r.rssi for r in contact.records] == [-60, -61]


def test_hellos_older_than_the_contagious_period_leave_the_report() -> None:
    server = Server()
    sender = registered(server)
    old, recent = sender.current_hello(NOW), sender.current_hello(NOW + 4 * EPOCH_DURATION)
    assert old is not None and recent is not None
    state = PhoneState()
    state.record_hello(old, NOW, -60)
    state.record_hello(recent, NOW + 4 * EPOCH_DURATION, -55)
    period = CONTAGIOUS_PERIOD_DAYS * DAY
    assert CONTAGIOUS_PERIOD_DAYS == 14
    assert {len(c.records) for c in state.contacts(NOW + period)} == {1}
    assert len(state.contacts(NOW + period)) == 2  # exactly 14 days old: still in
    [left] = state.contacts(NOW + period + 1)
    assert [r.time_collected for r in left.records] == [NOW + 4 * EPOCH_DURATION]
    assert state.contacts(NOW + 4 * EPOCH_DURATION + period + 1) == []


def test_saved_state_loads_back_the_same_phone() -> None:
    server = Server()
    state = registered(server)
    other = registered(Server(seed=3)).current_hello(NOW)
    assert other is not None
    state.record_hello(other, NOW - CONTAGIOUS_PERIOD_DAYS * DAY - 1, -70)  # too old to keep
    state.record_hello(other, NOW, -60)
    saved = state.to_state(NOW)
    loaded = PhoneState()
    loaded.load_state(saved)
    assert (loaded.k_a, loaded.k_ea, loaded.time_start) == (state.k_a, state.k_ea, T0)
    assert loaded.tuples == state.tuples
    assert loaded.current_hello(NOW) == state.current_hello(NOW)
    assert loaded.contacts(NOW) == state.contacts(NOW)
    assert [len(c.records) for c in loaded.contacts(NOW)] == [1]  # the old one was not saved
    assert loaded.to_state(NOW) == saved


def test_requests_are_signed_with_the_current_tuple() -> None:
    server = Server()
    state = registered(server)
    fields = state.auth_fields(RequestKind.STATUS, NOW)
    request = AuthRequest.from_fields(fields)
    assert server.k_a is not None
    verify_request_mac(server.k_a, RequestKind.STATUS, request)
    assert request.epoch_id == FIRST


def test_not_registered() -> None:
    state = PhoneState()
    assert not state.registered
    for call in (
        lambda: state.auth_fields(RequestKind.STATUS, NOW),
        lambda: state.to_state(NOW),
        lambda: state.store_bundle("AAAA", NOW),
    ):
        with pytest.raises(NotRegistered):
            call()
    server = Server()
    state = registered(server)
    state.forget()
    assert not state.registered and state.tuples == {}
    with pytest.raises(NotRegistered, match="register first"):
        state.auth_fields(RequestKind.STATUS, NOW)
    state = registered(server)
    state.tuples.clear()  # keys but no tuple at all
    with pytest.raises(NotRegistered, match="no tuple left"):
        state.auth_fields(RequestKind.STATUS, NOW)
