"""SKINNY-64/192, the 64-bit tweakable block cipher that makes EBIDs [robert.md: EBID and ECC].

Beierle et al., "The SKINNY Family of Block and Tweakable Block Ciphers", CRYPTO 2016, §2.
The state is a 4x4 array of 4-bit cells, cell 0 being the most significant nibble of the
64-bit block; the 192-bit key is the tweakey TK1 || TK2 || TK3; there are 40 rounds of
SubCells, AddConstants, AddRoundTweakey, ShiftRows and MixColumns.

Two implementations of the same cipher, checked against each other and against the paper's
test vectors in ``tests/protocol/test_skinny.py``:

* rows (``encrypt``/``decrypt``): one block, the state as four 16-bit rows, each row's
  SubCells and ShiftRows done by one lookup in a 65,536-entry table;
* bit-sliced (``encrypt_many``/``decrypt_many``), with numpy: blocks are transposed into 64
  bit-planes (one bit of one cell, for 64 blocks per machine word), so SubCells is twelve
  word-wise boolean operations for all cells of all blocks, and the cell permutations are
  plain re-indexing.

Both exist compiled too (``protocol/_skinny_rows.c``, built by ``pip install``), with no
constant of their own (the tables and round keys come from here):

* the row loop, the same eight lines per round: single blocks and decryption (0.37 µs a block
  against 6-7 µs interpreted);
* the bit-sliced loop over 256 blocks at a time (AVX2 where the CPU has it), each block with
  its own key: batch encryption, about 20 ns a block (``make bench``). Minting a status
  answer's 384 EBIDs under four or five day keys is one call (``encrypt_counters``).

Without a compiler the pure Python paths above serve. The tests run every check on each
path that is available.

Key schedules depend only on the key; both paths share one ``KeySchedule``, and the one-shot
functions keep the last few schedules in a small memo (a pure function's cache: no clock, no
I/O), because the server uses one key per day for every block.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from protocol.errors import BadLength

if TYPE_CHECKING:
    from protocol._skinny_rows import RowCipher

KEY_SIZE = 24
BLOCK_SIZE = 8
ROUNDS = 40
ROUNDS_BY_TWEAKEY = {8: 32, 16: 36, 24: 40}

# §2.3 SubCells: the 4-bit S-box S4 and its inverse.
SBOX = (0xC, 0x6, 0x9, 0x0, 0x1, 0xA, 0x2, 0xB, 0x3, 0x8, 0x5, 0xD, 0x4, 0xE, 0x7, 0xF)
SBOX_INV = tuple(SBOX.index(x) for x in range(16))

# §2.3 ShiftRows: cell i of the new state is cell SHIFT_ROWS[i] of the old one
# (row r rotated right by r cells).
SHIFT_ROWS = (0, 1, 2, 3, 7, 4, 5, 6, 10, 11, 8, 9, 13, 14, 15, 12)
SHIFT_ROWS_INV = tuple(SHIFT_ROWS.index(i) for i in range(16))

# §2.3 AddRoundTweakey: the tweakey cell permutation P_T applied after each round.
TWEAKEY_PERMUTATION = (9, 15, 8, 13, 10, 14, 12, 11, 0, 1, 2, 3, 4, 5, 6, 7)

_U16 = 0xFFFF


def _lfsr_tk2(x: int) -> int:
    """§2.3: TK2 cell LFSR (x3,x2,x1,x0) -> (x2,x1,x0,x3^x2)."""
    return ((x << 1) & 0xE) | (((x >> 3) ^ (x >> 2)) & 1)


def _lfsr_tk3(x: int) -> int:
    """§2.3: TK3 cell LFSR (x3,x2,x1,x0) -> (x0^x3,x3,x2,x1)."""
    return (x >> 1) | (((x ^ (x >> 3)) & 1) << 3)


def _cells(word: bytes) -> list[int]:
    """Split 8 bytes into 16 nibbles, most significant first (cell 0 first)."""
    out = []
    for byte in word:
        out.append(byte >> 4)
        out.append(byte & 0xF)
    return out


def _row(cells: list[int], row: int) -> int:
    c = cells[4 * row : 4 * row + 4]
    return (c[0] << 12) | (c[1] << 8) | (c[2] << 4) | c[3]


def _rotr16(x: int, bits: int) -> int:
    return ((x >> bits) | (x << (16 - bits))) & _U16


@dataclass(frozen=True, slots=True, eq=False)
class KeySchedule:
    """The 40 round tweakeys of one key, as (row 0, row 1) 16-bit words.

    Compared and hashed by identity (``key_schedule`` hands out one object per key), so the
    per-schedule memos below cost one pointer hash per block, not a hash of 80 integers.

    ``rows`` holds, per round, the value XORed into row 0 (tweakey cells 0-3 and the round
    constant c0) and row 1 (cells 4-7 and c1); row 2 always receives c2 = 0x2 in its first cell.
    """

    rows: tuple[tuple[int, int], ...] = field(repr=False)

    @classmethod
    def from_key(cls, key: bytes) -> KeySchedule:
        """Expand a 24-byte SKINNY-64/192 key TK1 || TK2 || TK3 (the cipher ROBERT uses)."""
        if len(key) != KEY_SIZE:
            raise BadLength(f"SKINNY-64/192 key must be {KEY_SIZE} bytes, got {len(key)}")
        return cls.from_tweakey(key)

    @classmethod
    def from_tweakey(cls, tweakey: bytes) -> KeySchedule:
        """Expand an 8, 16 or 24-byte tweakey: SKINNY-64/64, -64/128 or -64/192 (§2.3).

        The smaller members exist so that the schedule is checked against every published
        64-bit-block test vector, not only the one ROBERT uses.
        """
        if len(tweakey) not in ROUNDS_BY_TWEAKEY:
            raise BadLength("SKINNY-64 tweakey must be 8, 16 or 24 bytes")
        tks = [_cells(tweakey[i : i + 8]) for i in range(0, len(tweakey), 8)]
        lfsrs = (None, _lfsr_tk2, _lfsr_tk3)
        rc = 0
        rows = []
        for _ in range(ROUNDS_BY_TWEAKEY[len(tweakey)]):
            # §2.3 AddConstants: 6-bit affine LFSR, updated before use.
            rc = ((rc << 1) & 0x3F) | (((rc >> 5) ^ (rc >> 4) ^ 1) & 1)
            c0, c1 = rc & 0xF, rc >> 4
            mixed = [0] * 8
            for tk in tks:
                mixed = [m ^ x for m, x in zip(mixed, tk[:8], strict=True)]
            rows.append((_row(mixed, 0) ^ (c0 << 12), _row(mixed, 1) ^ (c1 << 12)))
            # §2.3 tweakey schedule: permute every TK, then the LFSRs on rows 0-1 of TK2, TK3.
            tks = [[tk[TWEAKEY_PERMUTATION[i]] for i in range(16)] for tk in tks]
            for tk, lfsr in zip(tks, lfsrs, strict=False):
                if lfsr is not None:
                    tk[:8] = [lfsr(x) for x in tk[:8]]
        return cls(tuple(rows))

    def round_key_words(self) -> list[int]:
        """The 64-bit word XORed into the state at each round (rows 0-2; row 3 gets nothing)."""
        return [(k0 << 48) | (k1 << 32) | (0x2 << 28) for k0, k1 in self.rows]


@lru_cache(maxsize=32)
def key_schedule(key: bytes) -> KeySchedule:
    """The schedule of ``key``, memoised: the server uses one key for a whole day of EBIDs."""
    return KeySchedule.from_key(key)


# --- Scalar path: four 16-bit rows, SubCells + ShiftRows by table lookup -------------------


def _row_tables() -> tuple[array[int], ...]:
    """Row tables: S applied to 4 cells, then rotated right by 0, 4, 8, 12 bits; and inverses.

    Packed arrays of 16-bit values (128 KiB each) rather than lists of int objects (about
    2.5 MB each): random blocks then mostly hit the CPU cache, which makes the scalar cipher
    two to three times faster on real traffic than with lists.
    """
    idx = np.arange(1 << 16, dtype=np.uint32)
    sbox, sinv = np.array(SBOX, dtype=np.uint32), np.array(SBOX_INV, dtype=np.uint32)

    U32 = npt.NDArray[np.uint32]

    def per_cell(table: U32, x: U32) -> U32:
        out = np.zeros_like(x)
        for shift in (0, 4, 8, 12):
            out |= table[(x >> shift) & 0xF] << shift
        return out

    def rotr(x: U32, bits: int) -> U32:
        if not bits:
            return x
        return ((x >> np.uint32(bits)) | (x << np.uint32(16 - bits))) & np.uint32(_U16)

    forward = per_cell(sbox, idx)
    # Decryption undoes ShiftRows (rotate left) then SubCells: T_inv[r][x] = S^-1(rotl_r(x)).
    tables = [array("H", rotr(forward, 4 * r).astype(np.uint16).tobytes()) for r in range(4)]
    tables += [
        array("H", per_cell(sinv, rotr(idx, (16 - 4 * r) % 16)).astype(np.uint16).tobytes())
        for r in range(4)
    ]
    return tuple(tables)


_T0, _T1, _T2, _T3, _I0, _I1, _I2, _I3 = _row_tables()
_C2_SHIFTED = _rotr16(0x2000, 8)  # c2 in row 2, after that row's ShiftRows


@lru_cache(maxsize=32)
def _scalar_round_keys(schedule: KeySchedule) -> tuple[tuple[int, int], ...]:
    """Round keys as they meet the rows after ShiftRows (ShiftRows is linear, so it commutes)."""
    return tuple((k0, _rotr16(k1, 4)) for k0, k1 in schedule.rows)


def _check_block(block: bytes) -> None:
    if len(block) != BLOCK_SIZE:
        raise BadLength(f"SKINNY-64 block must be {BLOCK_SIZE} bytes, got {len(block)}")


_COMPILED: RowCipher | None = None
"""The compiled row loop over this module's tables, or None (then the Python paths serve).
Setting it to None switches every compiled path off (tests and ``make bench`` do)."""
try:
    from protocol._skinny_rows import RowCipher, encrypt_runs
    from protocol._skinny_rows import encrypt_counters as encrypt_counters_compiled
except ImportError:  # built at install time; without a compiler the Python paths serve
    pass
else:
    _COMPILED = RowCipher((_T0, _T1, _T2, _T3, _I0, _I1, _I2, _I3), _C2_SHIFTED)

SLICED_THRESHOLD = 32
"""Batches of at least this many blocks go through the compiled bit-sliced loop (a pass of
256 lanes costs about as much as 30 blocks of the row loop)."""


@lru_cache(maxsize=32)
def _packed_round_keys(schedule: KeySchedule) -> bytes:
    """``_scalar_round_keys`` as native uint16 pairs, the compiled row loop's input."""
    return array("H", [k for pair in _scalar_round_keys(schedule) for k in pair]).tobytes()


@lru_cache(maxsize=32)
def _sliced_round_keys(schedule: KeySchedule) -> bytes:
    """``KeySchedule.rows`` one bit per byte, the compiled bit-sliced loop's input: byte
    ``32 * r + b`` is bit ``b`` (from the most significant of row 0, then row 1) of round key
    ``r``, 0 or 1. Expanded once per key, not on every call."""
    return bytes(
        (row >> (15 - bit)) & 1 for pair in schedule.rows for row in pair for bit in range(16)
    )


def encrypt_block(schedule: KeySchedule, block: bytes) -> bytes:
    """Encrypt one 8-byte block under an expanded key (§2 round function, 40 rounds)."""
    _check_block(block)
    if _COMPILED is not None:
        return _COMPILED.encrypt(_packed_round_keys(schedule), block)
    return _encrypt_rows(schedule, block)


def decrypt_block(schedule: KeySchedule, block: bytes) -> bytes:
    """Decrypt one 8-byte block under an expanded key (the rounds of ``encrypt_block`` undone)."""
    _check_block(block)
    if _COMPILED is not None:
        return _COMPILED.decrypt(_packed_round_keys(schedule), block)
    return _decrypt_rows(schedule, block)


def _encrypt_rows(schedule: KeySchedule, block: bytes) -> bytes:
    """The round function on four 16-bit rows, interpreted."""
    x = int.from_bytes(block, "big")
    r0, r1, r2, r3 = x >> 48, (x >> 32) & _U16, (x >> 16) & _U16, x & _U16
    t0, t1, t2, t3, c2 = _T0, _T1, _T2, _T3, _C2_SHIFTED
    for k0, k1 in _scalar_round_keys(schedule):
        a = t0[r0] ^ k0
        b = t1[r1] ^ k1
        c = t2[r2] ^ c2
        # MixColumns (§2.3): rows become (r0^r2^r3, r0, r1^r2, r0^r2).
        r1 = a
        r2 = b ^ c
        a ^= c
        r0 = a ^ t3[r3]
        r3 = a
    return ((r0 << 48) | (r1 << 32) | (r2 << 16) | r3).to_bytes(8, "big")


def _decrypt_rows(schedule: KeySchedule, block: bytes) -> bytes:
    """The rounds of ``_encrypt_rows`` undone, last round first, interpreted."""
    y = int.from_bytes(block, "big")
    y0, y1, y2, y3 = y >> 48, (y >> 32) & _U16, (y >> 16) & _U16, y & _U16
    i0, i1, i2, i3, c2 = _I0, _I1, _I2, _I3, _C2_SHIFTED
    for k0, k1 in reversed(_scalar_round_keys(schedule)):
        # Inverse MixColumns: x0 = y1, x1 = y1^y2^y3, x2 = y1^y3, x3 = y0^y3.
        x2 = y1 ^ y3
        y0, y1, y2, y3 = i0[y1 ^ k0], i1[x2 ^ y2 ^ k1], i2[x2 ^ c2], i3[y0 ^ y3]
    return ((y0 << 48) | (y1 << 32) | (y2 << 16) | y3).to_bytes(8, "big")


def encrypt(key: bytes, block: bytes) -> bytes:
    """SKINNY-64/192 encryption of one 8-byte block under a 24-byte key."""
    return encrypt_block(key_schedule(key), block)


def decrypt(key: bytes, block: bytes) -> bytes:
    """SKINNY-64/192 decryption of one 8-byte block under a 24-byte key."""
    return decrypt_block(key_schedule(key), block)


# --- Batch path: bit-sliced over numpy uint64 words -----------------------------------------
#
# The state is an array S of shape (4, 16, W): S[p, c] holds bit p of cell c (p = 0 is the
# cell's most significant bit x3) for 64 * W blocks. SubCells works plane-wise with renamed
# planes instead of moved ones, so the physical plane of logical bit p is (p + offset) % 4.
# ShiftRows is one gather along the cell axis; MixColumns is done in place, which leaves the
# rows in a rotated order that the next gather folds back in.

Planes = npt.NDArray[np.uint64]
_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)

# After in-place MixColumns the physical rows hold (y1, y2, y3, y0); after in-place inverse
# MixColumns they hold (x3, x0, x1, x2). _AFTER_MC[c] is where logical cell c then lies.
_AFTER_MC = tuple(4 * ((c // 4 - 1) % 4) + c % 4 for c in range(16))
_AFTER_MC_INV = tuple(4 * ((c // 4 + 1) % 4) + c % 4 for c in range(16))
_IDENTITY = tuple(range(16))


def _gather_index(layout: tuple[int, ...], source: tuple[int, ...]) -> npt.NDArray[np.intp]:
    """Index that brings cell ``source[k]`` (found at ``layout[...]``) to position k."""
    return np.array([layout[source[k]] for k in range(16)], dtype=np.intp)


_ENC_GATHER_FIRST = _gather_index(_IDENTITY, SHIFT_ROWS)
_ENC_GATHER = _gather_index(_AFTER_MC, SHIFT_ROWS)
_ENC_GATHER_LAST = _gather_index(_AFTER_MC, _IDENTITY)
_DEC_GATHER = _gather_index(_AFTER_MC_INV, SHIFT_ROWS_INV)


def _key_masks(word: int, offset: int, layout: tuple[int, ...]) -> Planes:
    """The round-key word as all-ones/all-zeros masks, in the state's physical order."""
    mask = np.zeros((4, 16, 1), dtype=np.uint64)
    for cell in range(16):
        nibble = (word >> (60 - 4 * cell)) & 0xF
        for p in range(4):
            if (nibble >> (3 - p)) & 1:
                mask[(p + offset) % 4, layout[cell], 0] = _ONES
    return mask


@lru_cache(maxsize=8)
def _batch_masks(schedule: KeySchedule) -> tuple[tuple[Planes, ...], tuple[Planes, ...]]:
    """Per-round key masks for the batch encryption and decryption loops."""
    words = schedule.round_key_words()
    # Encryption adds the key after SubCells of round r, when the plane offset is 3(r+1) mod 4
    # and the cells still lie where the previous MixColumns left them.
    enc = tuple(
        _key_masks(w, (3 * (r + 1)) % 4, _IDENTITY if r == 0 else _AFTER_MC)
        for r, w in enumerate(words)
    )
    # Decryption adds the key before inverse SubCells, at plane offset (rounds - 1 - r) mod 4
    # counted from the last round, cells in natural order.
    dec = tuple(_key_masks(w, (len(words) - 1 - r) % 4, _IDENTITY) for r, w in enumerate(words))
    return enc, dec


def _to_planes(blocks: bytes) -> tuple[Planes, int]:
    """Transpose n blocks into bit-planes (n padded to a multiple of 64)."""
    n = len(blocks) // BLOCK_SIZE
    padded = -(-n // 64) * 64
    data = np.zeros((padded, BLOCK_SIZE), dtype=np.uint8)
    data[:n] = np.frombuffer(blocks, dtype=np.uint8).reshape(n, BLOCK_SIZE)
    bits = np.unpackbits(data, axis=1)  # (padded, 64): column b is block bit b, MSB first
    planes = np.ascontiguousarray(np.packbits(bits.T, axis=1)).view(np.uint64)  # (64, padded/64)
    return np.ascontiguousarray(planes.reshape(16, 4, -1).transpose(1, 0, 2)), n


def _from_planes(state: Planes, n: int) -> bytes:
    """Inverse of ``_to_planes``: the first n blocks as concatenated bytes."""
    planes = np.ascontiguousarray(state.transpose(1, 0, 2)).reshape(64, -1)
    bits = np.unpackbits(planes.view(np.uint8), axis=1)  # (64, padded)
    return np.packbits(bits.T, axis=1)[:n].tobytes()


def _check_blocks(blocks: bytes) -> None:
    if len(blocks) % BLOCK_SIZE:
        raise BadLength(f"blocks must be a multiple of {BLOCK_SIZE} bytes, got {len(blocks)}")


def _encrypt_planes(state: Planes, masks: Sequence[Planes]) -> Planes:
    """The encryption rounds on bit-planes; ``masks[r]`` is (4, 16, 1) or (4, 16, W)."""
    other = np.empty_like(state)
    tmp = np.empty_like(state[0])
    offset = 0
    for r in range(len(masks)):
        # SubCells (§2.3): four times x0 ^= NOT(x3 OR x2), rotating the bit names between.
        for step in range(4):
            a, b, d = state[(offset) % 4], state[(offset + 1) % 4], state[(offset + 3) % 4]
            np.bitwise_or(a, b, out=tmp)
            np.invert(tmp, out=tmp)
            np.bitwise_xor(d, tmp, out=d)
            if step < 3:
                offset += 1
        offset %= 4
        state ^= masks[r]  # AddConstants and AddRoundTweakey
        np.take(state, _ENC_GATHER_FIRST if r == 0 else _ENC_GATHER, axis=1, out=other)
        state, other = other, state  # ShiftRows
        # MixColumns in place: rows (r0, r1, r2, r3) -> slots holding (y1, y2, y3, y0).
        r0, r1, r2, r3 = (state[:, 4 * i : 4 * i + 4] for i in range(4))
        r1 ^= r2
        r2 ^= r0
        r3 ^= r2
    np.take(state, _ENC_GATHER_LAST, axis=1, out=other)
    return np.roll(other, -offset, axis=0)  # logical bit p back to plane p


def _decrypt_planes(state: Planes, masks: Sequence[Planes]) -> Planes:
    """The decryption rounds on bit-planes; ``masks[r]`` is (4, 16, 1) or (4, 16, W)."""
    other = np.empty_like(state)
    tmp = np.empty_like(state[0])
    offset = 0
    for r in reversed(range(len(masks))):
        # Inverse MixColumns in place: rows (y0..y3) -> slots holding (x3, x0, x1, x2).
        y0, y1, y2, y3 = (state[:, 4 * i : 4 * i + 4] for i in range(4))
        y3 ^= y1
        y2 ^= y3
        y0 ^= y3
        y0 ^= y1
        np.take(state, _DEC_GATHER, axis=1, out=other)
        state, other = other, state  # inverse ShiftRows, rows back in natural order
        state ^= masks[r]
        # Inverse SubCells: x0 ^= NOT(x3 OR x2), then rotate the bit names right, four times.
        for step in range(4):
            a, b, d = state[offset % 4], state[(offset + 1) % 4], state[(offset + 3) % 4]
            np.bitwise_or(a, b, out=tmp)
            np.invert(tmp, out=tmp)
            np.bitwise_xor(d, tmp, out=d)
            if step < 3:
                offset -= 1
        offset %= 4
    return np.roll(state, -offset, axis=0)


def encrypt_many_with(schedule: KeySchedule, blocks: bytes) -> bytes:
    """Encrypt concatenated 8-byte blocks under one expanded key (compiled rows, or
    bit-sliced)."""
    _check_blocks(blocks)
    if not blocks:
        return b""
    if _COMPILED is not None:
        n = len(blocks) // BLOCK_SIZE
        if n >= SLICED_THRESHOLD:
            return encrypt_runs([_sliced_round_keys(schedule)], [(0, n)], blocks)
        return _COMPILED.encrypt(_packed_round_keys(schedule), blocks)
    state, n = _to_planes(blocks)
    return _from_planes(_encrypt_planes(state, _batch_masks(schedule)[0]), n)


def decrypt_many_with(schedule: KeySchedule, blocks: bytes) -> bytes:
    """Decrypt concatenated 8-byte blocks under one expanded key (compiled rows, or
    bit-sliced)."""
    _check_blocks(blocks)
    if not blocks:
        return b""
    if _COMPILED is not None:
        return _COMPILED.decrypt(_packed_round_keys(schedule), blocks)
    state, n = _to_planes(blocks)
    return _from_planes(_decrypt_planes(state, _batch_masks(schedule)[1]), n)


def _grouped(
    schedules: Sequence[KeySchedule], groups: Sequence[bytes], decrypt: bool
) -> list[bytes]:
    """Several groups of blocks, each under its own key, in ONE bit-sliced pass.

    Each group is padded to whole 64-block words, so a word of every bit-plane belongs to one
    key; the round-key masks are then per word instead of broadcast. One pass costs about as
    much as one call on the total, instead of one fixed overhead per key.
    """
    if len(schedules) != len(groups):
        raise ValueError("one schedule per group")
    for group in groups:
        _check_blocks(group)
    if _COMPILED is not None and not decrypt:  # one bit-sliced call, a key per group
        keys = [_sliced_round_keys(s) for s in schedules]
        counts = [len(g) // BLOCK_SIZE for g in groups]
        out = encrypt_runs(keys, list(enumerate(counts)), b"".join(groups))
        results, start = [], 0
        for c in counts:
            results.append(out[8 * start : 8 * (start + c)])
            start += c
        return results
    if _COMPILED is not None:  # no fixed cost per call to amortise: one call per group
        return [
            _COMPILED.decrypt(_packed_round_keys(s), g)
            for s, g in zip(schedules, groups, strict=True)
        ]
    counts = [len(g) // BLOCK_SIZE for g in groups]
    words = [-(-c // 64) for c in counts]
    if not sum(words):
        return [b"" for _ in groups]
    padded = b"".join(
        g + bytes(8 * (64 * w - c)) for g, c, w in zip(groups, counts, words, strict=True)
    )
    state, _ = _to_planes(padded)
    kept = [(s, w) for s, w in zip(schedules, words, strict=True) if w]
    side = 1 if decrypt else 0
    stacked = np.concatenate([_batch_mask_array(s)[side] for s, _ in kept], axis=3)
    masks = np.repeat(stacked, [w for _, w in kept], axis=3)  # (rounds, 4, 16, W)
    done = (_decrypt_planes if decrypt else _encrypt_planes)(state, list(masks))
    out = _from_planes(done, len(padded) // BLOCK_SIZE)
    results, start = [], 0
    for c, w in zip(counts, words, strict=True):
        results.append(out[8 * start : 8 * (start + c)])
        start += 64 * w
    return results


@lru_cache(maxsize=16)
def _batch_mask_array(schedule: KeySchedule) -> tuple[Planes, Planes]:
    """The masks of ``_batch_masks`` stacked as (rounds, 4, 16, 1) arrays."""
    enc, dec = _batch_masks(schedule)
    return np.stack(enc), np.stack(dec)


def encrypt_groups(schedules: Sequence[KeySchedule], groups: Sequence[bytes]) -> list[bytes]:
    """Encrypt each group of concatenated blocks under its own key, in one batch."""
    return _grouped(schedules, groups, decrypt=False)


Counters = tuple[int, int, int, int]
"""(index of a schedule, first block, step, count): the 64-bit blocks first, first + step, ...
(modulo 2**64, big-endian), as the EBID plaintexts of consecutive epochs are."""


def encrypt_counters(schedules: Sequence[KeySchedule], runs: Sequence[Counters]) -> bytes:
    """The ciphertexts of every run's blocks, run after run, each run under its schedule, in
    one batch: minting never builds its plaintexts in Python when the loop is compiled."""
    if _COMPILED is not None:  # it checks the runs, and counts modulo 2**64
        return encrypt_counters_compiled([_sliced_round_keys(s) for s in schedules], runs)
    for key, _, _, count in runs:
        if not 0 <= key < len(schedules) or count < 0:
            raise ValueError("a run names no schedule or has a negative count")
    groups = [
        b"".join(((first + step * i) % 2**64).to_bytes(8, "big") for i in range(count))
        for _, first, step, count in runs
    ]
    return b"".join(encrypt_groups([schedules[key] for key, *_ in runs], groups))


def decrypt_groups(schedules: Sequence[KeySchedule], groups: Sequence[bytes]) -> list[bytes]:
    """Decrypt each group of concatenated blocks under its own key, in one batch."""
    return _grouped(schedules, groups, decrypt=True)


def encrypt_many(key: bytes, blocks: bytes) -> bytes:
    """Encrypt 8-byte blocks (concatenated) under one 24-byte key; bytes in, bytes out."""
    return encrypt_many_with(key_schedule(key), blocks)


def decrypt_many(key: bytes, blocks: bytes) -> bytes:
    """Decrypt 8-byte blocks (concatenated) under one 24-byte key; bytes in, bytes out."""
    return decrypt_many_with(key_schedule(key), blocks)
