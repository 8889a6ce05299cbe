"""The compiled SKINNY-64 row loop (protocol/_skinny_rows.c) against the interpreted one.

The published vectors run on both paths in test_skinny.py; here, random keys and blocks, and
the compiled loop's own input checks.
"""

import os
import random
from typing import Any

import pytest

from protocol import skinny

NOT_BUILT = "protocol._skinny_rows was not built (no compiler at install time)"


def test_built_where_ci_requires_it() -> None:
    """CI sets ROBERT_REQUIRE_COMPILED=1: a failed build must not pass unnoticed there."""
    if os.environ.get("ROBERT_REQUIRE_COMPILED") == "1":
        assert skinny._COMPILED is not None, NOT_BUILT


def _compiled() -> None:
    if skinny._COMPILED is None:
        pytest.skip(NOT_BUILT)


def test_compiled_and_python_rows_agree_on_random_blocks_and_keys() -> None:
    _compiled()
    rng = random.Random(7)
    for _ in range(200):
        schedule = skinny.key_schedule(rng.randbytes(24))
        blocks = rng.randbytes(8 * 50)
        compiled = skinny.encrypt_many_with(schedule, blocks)
        assert compiled == b"".join(
            skinny._encrypt_rows(schedule, blocks[i : i + 8]) for i in range(0, len(blocks), 8)
        )
        assert skinny.decrypt_block(schedule, compiled[:8]) == skinny._decrypt_rows(
            schedule, compiled[:8]
        )
        assert skinny.decrypt_groups([schedule], [compiled]) == [blocks]


def test_compiled_loop_rejects_bad_buffers() -> None:
    _compiled()
    compiled = skinny._COMPILED
    assert compiled is not None
    with pytest.raises(ValueError):
        compiled.encrypt(b"\x00" * 6, bytes(8))
    with pytest.raises(ValueError):
        compiled.encrypt(b"\x00" * 8, bytes(9))
    with pytest.raises(ValueError):
        skinny.RowCipher([b""] * 8, 0)


# --- the bit-sliced batch ------------------------------------------------------------------
def _encrypt_runs() -> Any:
    from protocol._skinny_rows import encrypt_runs

    return encrypt_runs


def _rows(schedule: skinny.KeySchedule, block: bytes) -> bytes:
    """One block through the interpreted row loop: the reference the sliced loop must match."""
    return skinny._encrypt_rows(schedule, block)


def test_sliced_runs_match_the_rows_with_a_key_per_run() -> None:
    """Runs of every length (a pass is 256 lanes) under up to 12 keys, so that passes hold
    one key, several, and would hold more than eight (a pass then ends at the ninth)."""
    _compiled()
    rng = random.Random(11)
    for keys in (1, 3, 12):
        schedules = [skinny.key_schedule(rng.randbytes(24)) for _ in range(keys)]
        runs, blocks = [], b""
        for _ in range(40):
            runs.append((rng.randrange(keys), rng.choice((0, 1, 5, 63, 64, 65, 255, 256, 300))))
            blocks += rng.randbytes(8 * runs[-1][1])
        out = _encrypt_runs()([skinny._sliced_round_keys(s) for s in schedules], runs, blocks)
        expected, at = b"", 0
        for key, count in runs:
            for i in range(at, at + count):
                expected += _rows(schedules[key], blocks[8 * i : 8 * i + 8])
            at += count
        assert out == expected


def test_counters_are_the_blocks_they_stand_for() -> None:
    """encrypt_counters on its compiled and its Python path, against the row loop; the
    sequence wraps modulo 2**64 as the docstring says."""
    _compiled()
    rng = random.Random(12)
    schedules = [skinny.key_schedule(rng.randbytes(24)) for _ in range(3)]
    runs = [(0, 5 << 40 | 77, 1 << 40, 300), (2, 2**64 - 2, 1, 4), (1, 0, 3, 0), (1, 9, 7, 70)]
    expected = b"".join(
        _rows(schedules[key], ((first + step * i) % 2**64).to_bytes(8, "big"))
        for key, first, step, count in runs
        for i in range(count)
    )
    assert skinny.encrypt_counters(schedules, runs) == expected
    compiled, skinny._COMPILED = skinny._COMPILED, None
    try:
        assert skinny.encrypt_counters(schedules, runs) == expected
    finally:
        skinny._COMPILED = compiled


def test_sliced_loop_rejects_what_it_cannot_encrypt() -> None:
    _compiled()
    keys = [skinny._sliced_round_keys(skinny.key_schedule(bytes(24)))]
    for round_keys, runs, blocks in (
        ([b"\x00" * 6], [(0, 1)], bytes(8)),  # not 32 bytes per round
        ([*keys, keys[0][:-32]], [(0, 1)], bytes(8)),  # keys of different round counts
        ([bytes(32) * 39 + b"\x02" + bytes(31)], [(0, 1)], bytes(8)),  # a "bit" that is 2
        ([bytes(32) * 41], [(0, 1)], bytes(8)),  # more than 40 rounds
        (keys, [(1, 1)], bytes(8)),  # no such key
        (keys, [(0, 2)], bytes(8)),  # past the blocks
        (keys, [(0, 1)], bytes(16)),  # blocks left over
        (keys, [(0, 1)], bytes(9)),  # not whole blocks
    ):
        with pytest.raises(ValueError):
            _encrypt_runs()(round_keys, runs, blocks)
    with pytest.raises(ValueError):
        skinny.encrypt_counters([skinny.key_schedule(bytes(24))], [(1, 0, 1, 1)])
