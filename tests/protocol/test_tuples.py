"""Tuple bundles: what the server encrypts, the phone decrypts to the same tuples."""

import base64
import contextlib
import random
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.ebid import FRANCE, decrypt_ebid, decrypt_ecc
from protocol.epochs import REFERENCE_TIME_START, day_of_epoch
from protocol.errors import BadMac, ProtocolError
from protocol.tuples import (
    EbidTuple,
    _fixed_width_columns,
    decrypt_bundle,
    encrypt_bundle,
    make_tuples,
    parse_tuple_columns,
    parse_tuples,
    serialise_tuples,
)
from protocol.types import EbidKey, FederationKey, IdA, TupleKey


def test_server_bundle_decrypts_on_the_phone(
    k_g: FederationKey, k_ea: TupleKey, owner: IdA
) -> None:
    keys: dict[date, EbidKey] = {}

    def key_of_day(day: date) -> EbidKey:
        return keys.setdefault(day, EbidKey(random.Random(day.toordinal()).randbytes(24)))

    first = 96 * 100 + 50  # mid-day: the bundle spans five K_S days
    epochs = range(first, first + 4 * 96)
    tuples = make_tuples(owner, epochs, key_of_day, k_g, FRANCE, REFERENCE_TIME_START)
    assert [t.epoch_id for t in tuples] == list(epochs)
    bundle = encrypt_bundle(k_ea, tuples, bytes(12))
    assert decrypt_bundle(k_ea, bundle) == tuples
    for t in tuples[::37]:
        k_s = key_of_day(day_of_epoch(t.epoch_id, REFERENCE_TIME_START))
        assert decrypt_ebid(k_s, t.ebid) == (t.epoch_id, owner)
        assert decrypt_ecc(k_g, t.ebid, t.ecc) == FRANCE


def test_wrong_key_or_tampering_fails(k_ea: TupleKey) -> None:
    bundle = encrypt_bundle(k_ea, [EbidTuple(1, bytes(8), b"\x21")], bytes(12))
    with pytest.raises(BadMac):
        decrypt_bundle(TupleKey(bytes(32)), bundle)
    tampered = bundle[:-1] + bytes([bundle[-1] ^ 1])
    with pytest.raises(BadMac):
        decrypt_bundle(k_ea, tampered)


def test_json_layout_matches_the_reference() -> None:
    assert serialise_tuples([EbidTuple(5, bytes(8), b"\x21")]) == (
        b'[{"epochId":5,"key":{"ebid":"AAAAAAAAAAA=","ecc":"IQ=="}}]'
    )


tuples_strategy = st.lists(
    st.builds(
        EbidTuple,
        epoch_id=st.integers(0, 2**24 - 1),
        ebid=st.binary(min_size=8, max_size=8),
        ecc=st.binary(min_size=1, max_size=1),
    ),
    max_size=20,
)


@given(tuples_strategy)
def test_serialisation_round_trip(tuples: list[EbidTuple]) -> None:
    assert parse_tuples(serialise_tuples(tuples)) == tuples


@given(st.binary(max_size=200))
def test_parser_raises_only_protocol_errors(data: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_tuples(data)


def _as_columns(tuples: list[EbidTuple]) -> tuple[list[int], bytes, bytes]:
    return (
        [t.epoch_id for t in tuples],
        b"".join(t.ebid for t in tuples),
        b"".join(t.ecc for t in tuples),
    )


def _outcome(parse: object, data: bytes) -> object:
    """What a parser makes of ``data``: columns, or the protocol error's class."""
    try:
        columns = parse(data)  # type: ignore[operator]
    except ProtocolError as exc:
        return type(exc)
    if isinstance(columns, list):
        return _as_columns(columns)
    return (columns.epochs.tolist(), columns.ebids, columns.eccs)


same_width_tuples = st.integers(1, 9).flatmap(
    lambda digits: st.lists(
        st.builds(
            EbidTuple,
            epoch_id=st.integers(10 ** (digits - 1) if digits > 1 else 0, 10**digits - 1),
            ebid=st.binary(min_size=8, max_size=8),
            ecc=st.binary(min_size=1, max_size=1),
        ),
        min_size=1,
        max_size=20,
    )
)


@given(same_width_tuples)
def test_columns_read_the_fixed_width_layout(tuples: list[EbidTuple]) -> None:
    plaintext = serialise_tuples(tuples)
    assert _fixed_width_columns(plaintext) is not None  # the vectorised path, not the fallback
    assert _outcome(parse_tuple_columns, plaintext) == _as_columns(tuples)


@given(tuples_strategy)
def test_columns_agree_with_objects_on_any_serialisation(tuples: list[EbidTuple]) -> None:
    assert _outcome(parse_tuple_columns, serialise_tuples(tuples)) == _as_columns(tuples)


@given(same_width_tuples, st.data())
def test_columns_agree_with_objects_on_damaged_bundles(
    tuples: list[EbidTuple], data: st.DataObject
) -> None:
    """One byte changed anywhere: the same tuples or the same refusal as parse_tuples."""
    plaintext = bytearray(serialise_tuples(tuples))
    at = data.draw(st.integers(0, len(plaintext) - 1))
    plaintext[at] = data.draw(st.sampled_from(b'0 9A/+=a"{}[],:-.xe\\'))
    damaged = bytes(plaintext)
    assert _outcome(parse_tuple_columns, damaged) == _outcome(parse_tuples, damaged)


def test_columns_fall_back_for_other_json_layouts() -> None:
    tuples = [EbidTuple(7, bytes(range(8)), b"\x21"), EbidTuple(12, bytes(8), b"\xff")]
    spaced = serialise_tuples(tuples).replace(b",", b", ")
    assert _fixed_width_columns(spaced) is None
    assert _outcome(parse_tuple_columns, spaced) == _as_columns(tuples)


@given(st.binary(max_size=200))
def test_columns_raise_only_protocol_errors(data: bytes) -> None:
    assert _outcome(parse_tuple_columns, data) == _outcome(parse_tuples, data)


@given(st.binary(max_size=200))
def test_decrypt_raises_only_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        decrypt_bundle(TupleKey(bytes(32)), data)


def test_tuple_sets_for_several_registrations_match_one_by_one(
    k_g: FederationKey,
) -> None:
    from protocol.tuples import mint
    from protocol.types import id_a

    keys: dict[date, EbidKey] = {}

    def key_of_day(day: date) -> EbidKey:
        return keys.setdefault(day, EbidKey(random.Random(day.toordinal()).randbytes(24)))

    rng = random.Random(9)
    requests = [(id_a(rng.randbytes(5)), range(96 * 50 + 7 * i, 96 * 53)) for i in range(4)]
    minted = mint(requests, key_of_day, k_g, FRANCE, REFERENCE_TIME_START)
    together = [m.tuples() for m in minted]
    for (owner, epochs), tuples in zip(requests, together, strict=True):
        assert tuples == make_tuples(owner, epochs, key_of_day, k_g, FRANCE, REFERENCE_TIME_START)
        assert [t.epoch_id for t in tuples] == list(epochs)


@pytest.mark.parametrize(
    "epochs",
    [
        range(0, 120),
        range(5, 300),
        range(96 * 400 + 50, 96 * 404),
        range(99_990, 100_010),
        range(0),
    ],
)
def test_minted_json_is_the_reference_serialisation(
    epochs: range, k_g: FederationKey, owner: IdA
) -> None:
    from protocol.tuples import mint

    keys: dict[date, EbidKey] = {}

    def key_of_day(day: date) -> EbidKey:
        return keys.setdefault(day, EbidKey(random.Random(day.toordinal()).randbytes(24)))

    minted = mint([(owner, epochs)], key_of_day, k_g, FRANCE, REFERENCE_TIME_START)[0]
    assert minted.plaintext() == serialise_tuples(minted.tuples())
    assert parse_tuples(minted.plaintext()) == minted.tuples()


def test_sealed_parts_join_to_the_sealed_bundle(
    k_g: FederationKey, k_ea: TupleKey, owner: IdA
) -> None:
    from protocol.tuples import encrypt_bundle, mint, seal_bundle, seal_bundle_parts

    epochs = range(96 * 400, 96 * 404)
    minted = mint([(owner, epochs)], _key_of_day, k_g, FRANCE, REFERENCE_TIME_START)[0]
    iv = bytes(range(12))
    head, rest = seal_bundle_parts(k_ea, minted, iv)
    assert (head + rest).decode() == seal_bundle(k_ea, minted, iv)
    assert base64.b64decode(head + rest) == encrypt_bundle(k_ea, minted, iv)  # the other path
    assert decrypt_bundle(k_ea, base64.b64decode(head + rest)) == minted.tuples()


def test_columns_refuse_epochs_beyond_64_bits() -> None:
    """parse_tuples takes any non-negative JSON integer; columns hold int64."""
    plaintext = b'[{"epochId":9223372036854775808,"key":{"ebid":"AAAAAAAAAAA=","ecc":"AA=="}}]'
    assert parse_tuples(plaintext)[0].epoch_id == 2**63
    with pytest.raises(ProtocolError):
        parse_tuple_columns(plaintext)


def _key_of_day(day: date) -> EbidKey:
    return EbidKey(random.Random(day.toordinal()).randbytes(24))


@pytest.mark.parametrize("epochs", [range(96 * 400 + 50, 96 * 404), range(99_990, 100_010)])
def test_minting_is_the_same_on_the_compiled_and_the_python_paths(
    epochs: range, k_g: FederationKey, owner: IdA, monkeypatch: pytest.MonkeyPatch
) -> None:
    from protocol import skinny
    from protocol.tuples import mint

    if skinny._COMPILED is None:
        pytest.skip("protocol._skinny_rows was not built (no compiler at install time)")
    requests = [(owner, epochs), (IdA(b"\x07" * 5), epochs[3:])]
    compiled = mint(requests, _key_of_day, k_g, FRANCE, REFERENCE_TIME_START)
    monkeypatch.setattr(skinny, "_COMPILED", None)
    python = mint(requests, _key_of_day, k_g, FRANCE, REFERENCE_TIME_START)
    assert compiled == python
    assert [m.plaintext() for m in python] == [serialise_tuples(m.tuples()) for m in compiled]


@given(
    st.integers(min_value=0, max_value=2**40),
    st.binary(min_size=0, max_size=8 * 40).map(lambda b: b[: len(b) // 8 * 8]),
)
def test_compiled_json_writer_is_serialise_tuples(first: int, ebids: bytes) -> None:
    """protocol/_bundle.c writes exactly serialise_tuples' bytes, across digit widths."""
    writer = pytest.importorskip("protocol._bundle").tuples_json
    n = len(ebids) // 8
    eccs = bytes((7 * i) % 256 for i in range(n))
    tuples = [EbidTuple(first + i, ebids[8 * i : 8 * i + 8], eccs[i : i + 1]) for i in range(n)]
    assert writer(first, ebids, eccs) == serialise_tuples(tuples)
    with pytest.raises(ValueError):
        writer(first, ebids + b"x", eccs)
