"""The compiled SKINNY-64 row loop (protocol/_skinny_rows.c) against the interpreted one.

The published vectors run on both paths in test_skinny.py; here, random keys and blocks, and
the compiled loop's own input checks.
"""

import os
import random

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
