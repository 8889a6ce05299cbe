"""SKINNY-64: published vectors, scalar against batch, inverse, edge cases."""

import json
import random
from pathlib import Path

import pytest

from protocol import skinny
from protocol.errors import BadLength

BACKENDS = ["python", "compiled"]


@pytest.fixture(autouse=True, params=BACKENDS)
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test runs on the pure-Python paths and on the compiled row loop."""
    if request.param == "python":
        monkeypatch.setattr(skinny, "_COMPILED", None)
    elif skinny._COMPILED is None:
        pytest.skip("protocol._skinny_rows was not built (no compiler at install time)")
    return str(request.param)


VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "skinny64.json").read_text())[
    "vectors"
]


@pytest.mark.parametrize("v", VECTORS, ids=[v["variant"] for v in VECTORS])
def test_published_vectors_scalar_and_batch(v: dict[str, str]) -> None:
    schedule = skinny.KeySchedule.from_tweakey(bytes.fromhex(v["key"]))
    plain, cipher = bytes.fromhex(v["plaintext"]), bytes.fromhex(v["ciphertext"])
    assert skinny.encrypt_block(schedule, plain) == cipher
    assert skinny.decrypt_block(schedule, cipher) == plain
    assert skinny.encrypt_many_with(schedule, plain * 3) == cipher * 3
    assert skinny.decrypt_many_with(schedule, cipher * 70) == plain * 70


def test_robert_api_on_the_192_bit_vector() -> None:
    v = VECTORS[2]
    key, plain = bytes.fromhex(v["key"]), bytes.fromhex(v["plaintext"])
    assert skinny.encrypt(key, plain).hex() == v["ciphertext"]
    assert skinny.decrypt(key, bytes.fromhex(v["ciphertext"])) == plain
    assert skinny.encrypt_many(key, plain).hex() == v["ciphertext"]


def test_sbox_tables_are_inverse() -> None:
    assert sorted(skinny.SBOX) == list(range(16))
    assert all(skinny.SBOX_INV[skinny.SBOX[x]] == x for x in range(16))


def test_scalar_and_batch_agree_on_100k_random_blocks() -> None:
    rng = random.Random(20200601)
    key = rng.randbytes(24)
    blocks = rng.randbytes(8 * 100_000)
    batch = skinny.encrypt_many(key, blocks)
    schedule = skinny.key_schedule(key)
    scalar = b"".join(
        skinny.encrypt_block(schedule, blocks[i : i + 8]) for i in range(0, len(blocks), 8)
    )
    assert batch == scalar
    assert skinny.decrypt_many(key, batch) == blocks


def test_lone_blocks_and_batches_agree_both_ways(backend: str) -> None:
    """A call of few blocks runs on the byte-split tables (compiled), a batch on the big ones:
    the same cipher both ways, for encryption and decryption."""
    if backend == "compiled":
        assert skinny._COMPILED is not None and skinny._COMPILED.split == 1
    rng = random.Random(20260601)
    key = rng.randbytes(24)
    schedule = skinny.key_schedule(key)
    blocks = rng.randbytes(8 * 20_000)
    cipher = skinny.decrypt_many(key, blocks)
    lone = b"".join(
        skinny.decrypt_block(schedule, blocks[i : i + 8]) for i in range(0, len(blocks), 8)
    )
    assert lone == cipher
    few = b"".join(skinny.encrypt_many(key, cipher[i : i + 64]) for i in range(0, 8 * 2000, 64))
    assert few == blocks[: 8 * 2000]


@pytest.mark.parametrize("n", [0, 1, 63, 64, 65, 1000])
def test_batch_round_trip_any_count(n: int) -> None:
    rng = random.Random(n)
    key, blocks = rng.randbytes(24), rng.randbytes(8 * n)
    assert skinny.decrypt_many(key, skinny.encrypt_many(key, blocks)) == blocks


def test_different_keys_give_different_ciphertexts() -> None:
    block = bytes(8)
    assert skinny.encrypt(bytes(24), block) != skinny.encrypt(bytes(23) + b"\x01", block)


@pytest.mark.parametrize(
    ("key", "block"), [(bytes(23), bytes(8)), (bytes(24), bytes(7)), (bytes(25), bytes(8))]
)
def test_bad_lengths(key: bytes, block: bytes) -> None:
    with pytest.raises(BadLength):
        skinny.encrypt(key, block)


def test_batch_needs_whole_blocks() -> None:
    with pytest.raises(BadLength):
        skinny.encrypt_many(bytes(24), bytes(9))


def test_repr_hides_schedule() -> None:
    assert "rows" not in repr(skinny.key_schedule(bytes(24)))


@pytest.mark.parametrize("counts", [[1], [64, 0, 65], [96, 96, 96, 96, 96], [0, 0]])
def test_grouped_batch_matches_one_key_at_a_time(counts: list[int]) -> None:
    rng = random.Random(sum(counts))
    schedules = [skinny.key_schedule(rng.randbytes(24)) for _ in counts]
    groups = [rng.randbytes(8 * n) for n in counts]
    encrypted = skinny.encrypt_groups(schedules, groups)
    assert encrypted == [
        skinny.encrypt_many_with(s, g) for s, g in zip(schedules, groups, strict=True)
    ]
    assert skinny.decrypt_groups(schedules, encrypted) == groups
