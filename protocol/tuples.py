"""Tuple bundles: the (epoch, EBID, ECC) a phone broadcasts [robert.md: Tuple bundle].

The server mints one tuple per epoch for the days asked for and sends them encrypted under the
registration's K_EA: ``IV (12) || AES-256-GCM(K_EA, IV, JSON(tuples)) || tag (16)``, where the
JSON is a list of ``{"epochId": int, "key": {"ebid": base64, "ecc": base64}}``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol.auth import b64decode, b64encode
from protocol.ebid import make_ebids, make_eccs
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
    """One tuple per epoch, EBIDs encrypted in one batch per K_S day."""
    tuples: list[EbidTuple] = []
    by_day: dict[date, list[int]] = {}
    for epoch in epochs:
        by_day.setdefault(day_of_epoch(epoch, time_start), []).append(epoch)
    for day, day_epochs in by_day.items():
        ebids = make_ebids(key_of_day(day), day_epochs, id_a)
        eccs = make_eccs(k_g, ebids, country_code)
        tuples.extend(map(EbidTuple, day_epochs, ebids, eccs))
    return tuples


def serialise_tuples(tuples: Sequence[EbidTuple]) -> bytes:
    """The JSON plaintext of a bundle."""
    return orjson.dumps(
        [
            {"epochId": t.epoch_id, "key": {"ebid": b64encode(t.ebid), "ecc": b64encode(t.ecc)}}
            for t in tuples
        ]
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
