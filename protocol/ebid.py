"""EBIDs and encrypted country codes [robert.md: EBID and ECC].

``EBID_A,i = SKINNY-64/192(K_S, epoch_i (24 bits) || ID_A (40 bits))`` and
``ECC_A,i = MSB_8(AES-256(K_G, EBID_A,i || 0^64)) XOR CC``. Decrypting an EBID gives back the
epoch and ID_A; the caller compares that epoch with the one the message claims.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocol import skinny
from protocol.errors import BadLength, EpochMismatch, UnknownCountry
from protocol.types import EBID_SIZE, ECC_SIZE, EbidKey, Epoch, FederationKey, IdA, id_a

EPOCH_FIELD_BITS = 24
MAX_EPOCH = (1 << EPOCH_FIELD_BITS) - 1
FRANCE = 0x21
"""The country code France used (33)."""


def ebid_plaintext(epoch: int, id_a_: IdA) -> bytes:
    """The 8-byte block SKINNY encrypts: epoch (3 bytes, big-endian) || ID_A (5 bytes)."""
    if not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"epoch {epoch} does not fit in {EPOCH_FIELD_BITS} bits")
    return epoch.to_bytes(3, "big") + id_a_


EPOCH_STEP = 1 << 40
"""From one epoch's EBID plaintext to the next one's, as 64-bit integers."""


def ebid_counter(epoch: int, id_a_: IdA) -> tuple[int, int]:
    """The EBID plaintexts of ``epoch``, ``epoch + 1``, ... as an arithmetic sequence of
    64-bit blocks: (first, step). What ``skinny.encrypt_counters`` takes (minting)."""
    if not 0 <= epoch <= MAX_EPOCH:
        raise ValueError(f"epoch {epoch} does not fit in {EPOCH_FIELD_BITS} bits")
    return (epoch << 40) | int.from_bytes(id_a_, "big"), EPOCH_STEP


def ebid_plaintexts(id_a_: IdA, epochs: range) -> bytes:
    """``ebid_plaintext`` for every epoch of a range, concatenated (vectorised: minting)."""
    if epochs and not (epochs.start >= 0 and epochs.stop - 1 <= MAX_EPOCH):
        raise ValueError(f"epochs {epochs} do not fit in {EPOCH_FIELD_BITS} bits")
    epoch_column = np.arange(epochs.start, epochs.stop, dtype=np.uint64) << np.uint64(40)
    return (epoch_column | np.uint64(int.from_bytes(id_a_, "big"))).astype(">u8").tobytes()


def make_ebid(k_s: EbidKey, epoch: int, id_a_: IdA) -> bytes:
    """EBID of ID_A for ``epoch`` under the day key K_S."""
    return skinny.encrypt(k_s.material, ebid_plaintext(epoch, id_a_))


def make_ebids(k_s: EbidKey, epochs: Iterable[int], id_a_: IdA) -> list[bytes]:
    """EBIDs of one ID_A for many epochs of one K_S day, in one batch."""
    plain = b"".join(ebid_plaintext(e, id_a_) for e in epochs)
    out = skinny.encrypt_many(k_s.material, plain)
    return [out[i : i + EBID_SIZE] for i in range(0, len(out), EBID_SIZE)]


def _split(block: bytes) -> tuple[Epoch, IdA]:
    return Epoch(int.from_bytes(block[:3], "big")), IdA(block[3:])


def decrypt_ebid(k_s: EbidKey, ebid: bytes) -> tuple[Epoch, IdA]:
    """(epoch, ID_A) inside an EBID. Any 8 bytes decrypt: check the epoch afterwards."""
    if len(ebid) != EBID_SIZE:
        raise BadLength(f"EBID must be {EBID_SIZE} bytes, got {len(ebid)}")
    return _split(skinny.decrypt(k_s.material, ebid))


def decrypt_ebids(k_s: EbidKey, ebids: Sequence[bytes]) -> list[tuple[Epoch, IdA]]:
    """(epoch, ID_A) of many EBIDs under one K_S, decrypted in one batch."""
    for ebid in ebids:
        if len(ebid) != EBID_SIZE:
            raise BadLength(f"EBID must be {EBID_SIZE} bytes, got {len(ebid)}")
    plain = skinny.decrypt_many(k_s.material, b"".join(ebids))
    return [_split(plain[i : i + EBID_SIZE]) for i in range(0, len(plain), EBID_SIZE)]


def check_ebid_epoch(decrypted: tuple[Epoch, IdA], claimed_epoch: int) -> IdA:
    """ID_A of a decrypted EBID, if its epoch is the one the message claims."""
    epoch, owner = decrypted
    if epoch != claimed_epoch:
        raise EpochMismatch("EBID does not belong to the claimed epoch")
    return id_a(owner)


_ecc_blocks_compiled: Callable[[bytes], bytes] | None = None
# Built at install time; without a compiler numpy lays the blocks out.
with contextlib.suppress(ImportError):
    from protocol._bundle import ecc_blocks as _ecc_blocks_compiled


def _ecc_blocks(ebids: bytes) -> bytes:
    """EBID || 8 zero bytes for each EBID: the AES input whose first output byte is a pad."""
    if _ecc_blocks_compiled is not None:
        return _ecc_blocks_compiled(ebids)
    n = len(ebids) // EBID_SIZE
    blocks = np.zeros((n, 16), dtype=np.uint8)
    blocks[:, :EBID_SIZE] = np.frombuffer(ebids, dtype=np.uint8, count=n * EBID_SIZE).reshape(
        n, EBID_SIZE
    )
    return blocks.tobytes()


@lru_cache(maxsize=4)
def _ecb(key: bytes) -> Any:
    """An AES-256-ECB encryptor under ``key``, kept: ECB carries no state from one block to
    the next, and setting up a context costs three times encrypting a bundle's 384 blocks."""
    return Cipher(algorithms.AES(key), modes.ECB()).encryptor()


def ecc_pads(k_g: FederationKey, ebids: bytes) -> bytes:
    """First byte of AES-256(K_G, EBID || 0^64) for each EBID of ``ebids`` (8 bytes each,
    concatenated): the pad an ECC XORs with the country code. ECB, so one call for all."""
    if len(ebids) % EBID_SIZE:
        raise BadLength("EBIDs are 8 bytes each")
    encrypted: bytes = _ecb(k_g.material).update(_ecc_blocks(ebids))
    return encrypted[::16]


_XOR_TABLES: dict[int, bytes] = {}


def ecc_column(k_g: FederationKey, ebids: bytes, country_code: int) -> bytes:
    """The ECC of each EBID of ``ebids`` (8 bytes each, concatenated), one byte each: the
    pads of one AES call XORed with the country code (a byte translation, no Python loop)."""
    table = _XOR_TABLES.get(country_code)
    if table is None:
        if not 0 <= country_code <= 255:
            raise ValueError("the country code is one byte")
        table = _XOR_TABLES[country_code] = bytes(i ^ country_code for i in range(256))
    return ecc_pads(k_g, ebids).translate(table)


def make_ecc(k_g: FederationKey, ebid: bytes, country_code: int) -> bytes:
    """ECC of an EBID: the country code hidden under K_G."""
    return bytes([ecc_pads(k_g, ebid)[0] ^ country_code])


def make_eccs(k_g: FederationKey, ebids: Sequence[bytes], country_code: int) -> list[bytes]:
    """ECCs of many EBIDs, in one AES call."""
    return [bytes([pad ^ country_code]) for pad in ecc_pads(k_g, b"".join(ebids))]


def decrypt_ecc(k_g: FederationKey, ebid: bytes, ecc: bytes) -> int:
    """Country code hidden in an ECC (the same XOR as its encryption)."""
    if len(ebid) != EBID_SIZE or len(ecc) != ECC_SIZE:
        raise BadLength("EBID must be 8 bytes and ECC 1 byte")
    return ecc_pads(k_g, ebid)[0] ^ ecc[0]


def check_country(country_code: int, ours: int, federated: frozenset[int] = frozenset()) -> bool:
    """True if the code is ours, False if it belongs to a federated country; else raise."""
    if country_code == ours:
        return True
    if country_code in federated:
        return False
    raise UnknownCountry(f"unknown country code {country_code:#04x}")
