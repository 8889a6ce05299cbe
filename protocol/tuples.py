"""Tuple bundles: the (epoch, EBID, ECC) a phone broadcasts [robert.md: Tuple bundle].

The server mints one tuple per epoch for the days asked for and sends them encrypted under the
registration's K_EA: ``IV (12) || AES-256-GCM(K_EA, IV, JSON(tuples)) || tag (16)``, where the
JSON is a list of ``{"epochId": int, "key": {"ebid": base64, "ecc": base64}}``.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol import skinny
from protocol.auth import b64decode, b64encode
from protocol.ebid import ebid_plaintext, make_eccs
from protocol.epochs import day_of_epoch
from protocol.errors import BadFormat, BadLength, BadMac
from protocol.types import EBID_SIZE, ECC_SIZE, EbidKey, FederationKey, IdA, TupleKey

IV_SIZE = 12
TAG_SIZE = 16


@dataclass(frozen=True, slots=True)
class EbidTuple:
    """What a phone needs to broadcast during one epoch."""

    epoch_id: int
    ebid: bytes
    ecc: bytes


def make_tuples(
    id_a: IdA,
    epochs: range,
    key_of_day: Callable[[date], EbidKey],
    k_g: FederationKey,
    country_code: int,
    time_start: int,
) -> list[EbidTuple]:
    """One tuple per epoch of ``epochs`` for one registration."""
    return make_tuple_sets([(id_a, epochs)], key_of_day, k_g, country_code, time_start)[0]


def make_tuple_sets(
    requests: Sequence[tuple[IdA, range]],
    key_of_day: Callable[[date], EbidKey],
    k_g: FederationKey,
    country_code: int,
    time_start: int,
) -> list[list[EbidTuple]]:
    """Tuples for several registrations at once: every EBID of every K_S day in ONE SKINNY
    batch, every ECC in one AES call (minting EBIDs is the main cost of a bundle)."""
    by_day: dict[date, list[tuple[int, int]]] = {}  # day -> [(request index, epoch)]
    for index, (_, epochs) in enumerate(requests):
        for epoch in epochs:
            by_day.setdefault(day_of_epoch(epoch, time_start), []).append((index, epoch))
    days = list(by_day)
    groups = [b"".join(ebid_plaintext(e, requests[i][0]) for i, e in by_day[day]) for day in days]
    schedules = [skinny.key_schedule(key_of_day(day).material) for day in days]
    ebids = b"".join(skinny.encrypt_groups(schedules, groups))
    order = [item for day in days for item in by_day[day]]
    eccs = make_eccs(k_g, [ebids[8 * j : 8 * j + 8] for j in range(len(order))], country_code)
    out: list[list[EbidTuple]] = [[] for _ in requests]
    for j, (index, epoch) in enumerate(order):
        out[index].append(EbidTuple(epoch, ebids[8 * j : 8 * j + 8], eccs[j]))
    for tuples in out:
        tuples.sort(key=lambda t: t.epoch_id)
    return out


_ECC_B64 = [b64encode(bytes([i])).encode() for i in range(256)]


def serialise_tuples(tuples: Sequence[EbidTuple]) -> bytes:
    """The JSON plaintext of a bundle (written directly: it is on every registration's path)."""
    b64 = binascii.b2a_base64
    return (
        b"["
        + b",".join(
            b'{"epochId":%d,"key":{"ebid":"%s","ecc":"%s"}}'
            % (t.epoch_id, b64(t.ebid, newline=False), _ECC_B64[t.ecc[0]])
            for t in tuples
        )
        + b"]"
    )


def parse_tuples(plaintext: bytes) -> list[EbidTuple]:
    """Tuples from a bundle's JSON plaintext, raising only protocol errors."""
    try:
        items: Any = orjson.loads(plaintext)
    except orjson.JSONDecodeError as exc:
        raise BadFormat("tuple bundle is not JSON") from exc
    if not isinstance(items, list):
        raise BadFormat("tuple bundle must be a list")
    out = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), dict):
            raise BadFormat("tuple must be {epochId, key: {ebid, ecc}}")
        epoch = item.get("epochId")
        if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 0:
            raise BadFormat("epochId must be a non-negative integer")
        key = item["key"]
        out.append(
            EbidTuple(
                epoch,
                b64decode(key.get("ebid"), "ebid", EBID_SIZE),
                b64decode(key.get("ecc"), "ecc", ECC_SIZE),
            )
        )
    return out


def encrypt_bundle(k_ea: TupleKey, tuples: Sequence[EbidTuple], iv: bytes) -> bytes:
    """IV || AES-256-GCM ciphertext || tag of the tuples; ``iv`` must be 12 fresh random bytes."""
    if len(iv) != IV_SIZE:
        raise BadLength(f"IV must be {IV_SIZE} bytes")
    return iv + AESGCM(k_ea.material).encrypt(iv, serialise_tuples(tuples), None)


def decrypt_bundle(k_ea: TupleKey, bundle: bytes) -> list[EbidTuple]:
    """The tuples of an encrypted bundle (phone side); BadMac if it was not made under K_EA."""
    if len(bundle) < IV_SIZE + TAG_SIZE:
        raise BadLength("tuple bundle too short")
    try:
        plaintext = AESGCM(k_ea.material).decrypt(bundle[:IV_SIZE], bundle[IV_SIZE:], None)
    except InvalidTag as exc:
        raise BadMac("tuple bundle does not decrypt under K_EA") from exc
    return parse_tuples(plaintext)
