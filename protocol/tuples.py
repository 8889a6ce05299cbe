"""Tuple bundles: the (epoch, EBID, ECC) a phone broadcasts [robert.md: Tuple bundle].

The server mints one tuple per epoch for the days asked for and sends them encrypted under the
registration's K_EA: ``IV (12) || AES-256-GCM(K_EA, IV, JSON(tuples)) || tag (16)``, where the
JSON is a list of ``{"epochId": int, "key": {"ebid": base64, "ecc": base64}}``.
"""

from __future__ import annotations

import binascii
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
import pybase64
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol import skinny
from protocol.auth import b64decode, b64encode
from protocol.ebid import ebid_counter, ecc_column
from protocol.epochs import day_of_epoch, epochs_of_day
from protocol.errors import BadFormat, BadLength, BadMac
from protocol.types import EBID_SIZE, ECC_SIZE, EbidKey, FederationKey, IdA, TupleKey

IV_SIZE = 12
TAG_SIZE = 16

_tuples_json: Callable[[int, bytes, bytes], bytes] | None = None
# Built at install time; without a compiler numpy writes the JSON.
with contextlib.suppress(ImportError):
    from protocol._bundle import tuples_json as _tuples_json


@dataclass(frozen=True, slots=True)
class EbidTuple:
    """What a phone needs to broadcast during one epoch."""

    epoch_id: int
    ebid: bytes
    ecc: bytes


@dataclass(frozen=True, slots=True)
class MintedTuples:
    """One registration's tuples as packed columns: what minting produces and JSON needs."""

    epochs: range
    ebids: bytes
    """The EBIDs of ``epochs``, 8 bytes each, concatenated."""
    eccs: bytes
    """The ECCs of ``epochs``, one byte each."""

    def tuples(self) -> list[EbidTuple]:
        """As ``EbidTuple`` objects."""
        e, c = self.ebids, self.eccs
        return [
            EbidTuple(epoch, e[8 * i : 8 * i + 8], c[i : i + 1])
            for i, epoch in enumerate(self.epochs)
        ]

    def plaintext(self) -> bytes:
        """The bundle's JSON plaintext, as ``serialise_tuples`` writes it.

        It is on every status answer's path, and formatting 384 items one by one in Python
        cost more than minting them: compiled (``protocol/_bundle.c``) when it was built, else
        one fixed-width byte matrix when every epochId has the same number of digits (always,
        but for the rare bundle that crosses a power of ten).
        """
        if _tuples_json is not None and skinny._COMPILED is not None:
            return _tuples_json(self.epochs.start, self.ebids, self.eccs)
        n = len(self.epochs)
        if n == 0 or len(str(self.epochs[0])) != len(str(self.epochs[-1])):
            return serialise_tuples(self.tuples())
        row = _row_layout(len(str(self.epochs[0])))
        rows = np.tile(row.template, (n, 1))
        epochs = np.arange(self.epochs.start, self.epochs.stop, dtype=np.int64)
        rows[:, row.epoch] = (epochs[:, None] // row.powers % 10 + ord("0")).astype(np.uint8)
        rows[:, row.ebid] = _b64_matrix(self.ebids)
        rows[:, row.ecc] = _ECC_B64_MATRIX[np.frombuffer(self.eccs, dtype=np.uint8), :2]
        return b"[" + rows.tobytes()[:-1] + b"]"


# One tuple of a bundle as ``serialise_tuples`` writes it, and the fixed-width form of it that
# ``MintedTuples.plaintext`` writes and ``parse_tuple_columns`` reads (with a trailing comma):
# {"epochId":<digits>,"key":{"ebid":"<11 base64 characters>=","ecc":"<2 characters>=="}}
_HEAD, _MIDDLE, _TAIL, _END = b'{"epochId":', b',"key":{"ebid":"', b'","ecc":"', b'"}}'


@dataclass(frozen=True, slots=True)
class _RowLayout:
    """Where the variable characters of a fixed-width tuple sit, for epochIds of one width."""

    template: npt.NDArray[np.uint8]
    """The row with placeholders: every other byte is structure."""
    epoch: slice
    ebid: slice
    """The 11 significant base64 characters of the EBID (the 12th is '=')."""
    ecc: slice
    """The 2 significant base64 characters of the ECC (then '==')."""
    powers: npt.NDArray[np.int64]
    """Place values of the epochId's digits."""

    @property
    def fixed(self) -> npt.NDArray[np.bool_]:
        """True where the byte is structure."""
        mask = np.ones(len(self.template), dtype=bool)
        for field in (self.epoch, self.ebid, self.ecc):
            mask[field] = False
        return mask


@lru_cache(maxsize=16)
def _row_layout(digits: int) -> _RowLayout:
    epoch = len(_HEAD)
    ebid = epoch + digits + len(_MIDDLE)
    ecc = ebid + 12 + len(_TAIL)
    template = _HEAD + b"0" * digits + _MIDDLE + b"A" * 11 + b"=" + _TAIL + b"AA==" + _END + b","
    return _RowLayout(
        np.frombuffer(template, dtype=np.uint8),
        slice(epoch, epoch + digits),
        slice(ebid, ebid + 11),
        slice(ecc, ecc + 2),
        10 ** np.arange(digits - 1, -1, -1, dtype=np.int64),
    )


_B64_ALPHABET = np.frombuffer(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", dtype=np.uint8
)
_ECC_B64 = [b64encode(bytes([i])).encode() for i in range(256)]
_ECC_B64_MATRIX = np.frombuffer(b"".join(_ECC_B64), dtype=np.uint8).reshape(256, 4)


def _b64_matrix(blocks: bytes) -> npt.NDArray[np.uint8]:
    """The 11 significant characters of the standard base64 of each 8-byte block (then '='),
    one row each."""
    x = np.frombuffer(blocks, dtype=">u8").astype(np.uint64)
    sextets = np.empty((len(x), 11), dtype=np.uint8)
    for i in range(10):
        sextets[:, i] = _B64_ALPHABET[(x >> np.uint64(58 - 6 * i)) & np.uint64(63)]
    sextets[:, 10] = _B64_ALPHABET[(x & np.uint64(0xF)) << np.uint64(2)]
    return sextets


@lru_cache(maxsize=64)
def day_chunks(epochs: range, time_start: int) -> tuple[tuple[date, range], ...]:
    """``epochs`` cut at UTC midnights: each piece with the day whose K_S encrypts it
    (memoised: every status answer of one epoch asks for the same epochs)."""
    chunks = []
    epoch = epochs.start
    while epoch < epochs.stop:
        day = day_of_epoch(epoch, time_start)
        stop = min(epochs.stop, epochs_of_day(day, time_start).stop)
        chunks.append((day, range(epoch, stop)))
        epoch = stop
    return tuple(chunks)


def mint(
    requests: Sequence[tuple[IdA, range]],
    key_of_day: Callable[[date], EbidKey],
    k_g: FederationKey,
    country_code: int,
    time_start: int,
) -> list[MintedTuples]:
    """Tuples for several registrations at once [robert.md: EBID and ECC, Tuple bundle].

    Every EBID of every request goes through ONE SKINNY batch (each day's piece a run of
    consecutive plaintexts under that day's K_S), and every ECC through one AES call: minting
    is the main cost of a status answer, which carries a fresh bundle each time.
    """
    days: dict[date, int] = {}
    runs: list[skinny.Counters] = []
    for owner, epochs in requests:
        if not epochs:
            continue
        # The plaintexts of consecutive epochs are an arithmetic sequence: the first and the
        # last epoch checked, each day's run starts where the sequence has got to.
        base, step = ebid_counter(epochs.start, owner)
        ebid_counter(epochs[-1], owner)
        for day, chunk in day_chunks(epochs, time_start):
            first = base + step * (chunk.start - epochs.start)
            runs.append((days.setdefault(day, len(days)), first, step, len(chunk)))
    schedules = [skinny.key_schedule(key_of_day(day).material) for day in days]
    ebids = skinny.encrypt_counters(schedules, runs)
    eccs = ecc_column(k_g, ebids, country_code)
    out, start = [], 0
    for _, epochs in requests:
        stop = start + len(epochs)
        out.append(MintedTuples(epochs, ebids[8 * start : 8 * stop], eccs[start:stop]))
        start = stop
    return out


def make_tuples(
    id_a: IdA,
    epochs: range,
    key_of_day: Callable[[date], EbidKey],
    k_g: FederationKey,
    country_code: int,
    time_start: int,
) -> list[EbidTuple]:
    """One tuple per epoch of ``epochs`` for one registration."""
    return mint([(id_a, epochs)], key_of_day, k_g, country_code, time_start)[0].tuples()


def serialise_tuples(tuples: Sequence[EbidTuple]) -> bytes:
    """The JSON plaintext of a bundle: a list of {epochId, key: {ebid, ecc}}."""
    b64 = binascii.b2a_base64
    items = [
        _HEAD
        + b"%d" % t.epoch_id
        + _MIDDLE
        + b64(t.ebid, newline=False)
        + _TAIL
        + _ECC_B64[t.ecc[0]]
        + _END
        for t in tuples
    ]
    return b"[" + b",".join(items) + b"]"


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


@dataclass(frozen=True, slots=True)
class TupleColumns:
    """A bundle's tuples as columns (phone side): what a phone keeping thousands of tuples in
    arrays needs, without one object per tuple."""

    epochs: npt.NDArray[np.int64]
    ebids: bytes
    """8 bytes per tuple, in the order of ``epochs``."""
    eccs: bytes
    """1 byte per tuple."""


_INT64_MAX = 2**63 - 1
_B64_VALUES = np.full(256, 255, dtype=np.uint8)
_B64_VALUES[_B64_ALPHABET] = np.arange(64, dtype=np.uint8)
"""Base64 character -> its 6 bits; 255 for a byte outside the alphabet."""


def parse_tuple_columns(plaintext: bytes) -> TupleColumns:
    """``parse_tuples`` as columns, raising only protocol errors.

    A bundle in the layout ``serialise_tuples`` writes (no spaces, keys in that order, epochIds
    of one width, canonical base64) is read as one byte matrix: every structural byte compared
    with the layout, digits and base64 decoded column-wise. Anything else, valid JSON written
    another way included, goes through ``parse_tuples``: same result, one object at a time.
    """
    columns = _fixed_width_columns(plaintext)
    if columns is not None:
        return columns
    tuples = parse_tuples(plaintext)
    if any(t.epoch_id > _INT64_MAX for t in tuples):
        raise BadFormat("epochId out of range")
    return TupleColumns(
        np.array([t.epoch_id for t in tuples], dtype=np.int64),
        b"".join(t.ebid for t in tuples),
        b"".join(t.ecc for t in tuples),
    )


def _fixed_width_columns(plaintext: bytes) -> TupleColumns | None:
    """The columns of a bundle in exactly ``serialise_tuples``' layout, else None."""
    if not plaintext.startswith(b"[" + _HEAD) or not plaintext.endswith(_END + b"]"):
        return None
    start = 1 + len(_HEAD)
    digits = plaintext.find(_MIDDLE, start, start + 10 + len(_MIDDLE)) - start
    if digits < 1:
        return None
    row = _row_layout(digits)
    body = plaintext[1:-1] + b","
    if len(body) % len(row.template):
        return None
    rows = np.frombuffer(body, dtype=np.uint8).reshape(-1, len(row.template))
    if not (rows[:, row.fixed] == row.template[row.fixed]).all():
        return None
    numerals = rows[:, row.epoch].astype(np.int64) - ord("0")
    if ((numerals < 0) | (numerals > 9)).any() or (digits > 1 and (numerals[:, 0] == 0).any()):
        return None  # not digits, or a leading zero (not JSON): let the JSON parser say
    ebid = _B64_VALUES[rows[:, row.ebid]].astype(np.uint64)
    ecc = _B64_VALUES[rows[:, row.ecc]]
    if (
        (ebid == 255).any()
        or (ecc == 255).any()
        or (ebid[:, 10] & 3).any()
        or (ecc[:, 1] & 15).any()
    ):
        return None  # not base64, or not the canonical encoding of 8 bytes and of 1 byte
    value = ebid[:, 10] >> np.uint64(2)
    for i in range(10):
        value |= ebid[:, i] << np.uint64(58 - 6 * i)
    return TupleColumns(
        numerals @ row.powers,
        value.astype(">u8").tobytes(),
        ((ecc[:, 0] << 2) | (ecc[:, 1] >> 4)).astype(np.uint8).tobytes(),
    )


def encrypt_bundle(k_ea: TupleKey, tuples: Sequence[EbidTuple] | MintedTuples, iv: bytes) -> bytes:
    """IV || AES-256-GCM ciphertext || tag of the tuples; ``iv`` must be 12 fresh random bytes."""
    if len(iv) != IV_SIZE:
        raise BadLength(f"IV must be {IV_SIZE} bytes")
    plaintext = tuples.plaintext() if isinstance(tuples, MintedTuples) else serialise_tuples(tuples)
    return iv + AESGCM(k_ea.material).encrypt(iv, plaintext, None)


def seal_bundle_parts(k_ea: TupleKey, tuples: MintedTuples, iv: bytes) -> tuple[bytes, bytes]:
    """``seal_bundle`` in two pieces, ASCII bytes: base64 of the IV and base64 of the
    ciphertext and tag. Joined, they are ``seal_bundle`` (the IV's 12 bytes are whole base64
    quanta), without the copy of IV || ciphertext that encoding it at once needs: a status
    answer writes the two pieces into its JSON as they are."""
    if len(iv) != IV_SIZE:
        raise BadLength(f"IV must be {IV_SIZE} bytes")
    sealed = AESGCM(k_ea.material).encrypt(iv, tuples.plaintext(), None)
    return pybase64.b64encode(iv), pybase64.b64encode(sealed)


def seal_bundle(k_ea: TupleKey, tuples: MintedTuples, iv: bytes) -> str:
    """The bundle as a registration answer carries it: base64 of ``encrypt_bundle``, the two
    pieces of ``seal_bundle_parts`` (what status answers write) joined."""
    return b"".join(seal_bundle_parts(k_ea, tuples, iv)).decode("ascii")


def open_bundle(k_ea: TupleKey, bundle: bytes) -> bytes:
    """The JSON plaintext of an encrypted bundle (phone side); BadMac if it was not made under
    K_EA."""
    if len(bundle) < IV_SIZE + TAG_SIZE:
        raise BadLength("tuple bundle too short")
    try:
        return AESGCM(k_ea.material).decrypt(bundle[:IV_SIZE], bundle[IV_SIZE:], None)
    except InvalidTag as exc:
        raise BadMac("tuple bundle does not decrypt under K_EA") from exc


def decrypt_bundle(k_ea: TupleKey, bundle: bytes) -> list[EbidTuple]:
    """The tuples of an encrypted bundle (phone side); BadMac if it was not made under K_EA."""
    return parse_tuples(open_bundle(k_ea, bundle))
