"""Submission codes: format, generation from a given random source, validation."""

import contextlib
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.codes import (
    SHORT_ALPHABET,
    CodeKind,
    CodePolicy,
    code_space,
    generate_code,
    guess_probability,
    parse_code,
)
from protocol.errors import BadFormat, ProtocolError


def test_short_code_format() -> None:
    code = generate_code(CodeKind.SHORT, random.Random(1).randbytes)
    assert len(code) == 6 and set(code) <= set(SHORT_ALPHABET)
    assert parse_code(code.lower()) == (CodeKind.SHORT, code)


def test_long_code_is_a_uuid4() -> None:
    import uuid

    code = generate_code(CodeKind.LONG, random.Random(1).randbytes)
    assert uuid.UUID(code).version == 4
    assert parse_code(code.upper()) == (CodeKind.LONG, code)


def test_generation_is_deterministic_given_the_source() -> None:
    for kind in CodeKind:
        assert generate_code(kind, random.Random(5).randbytes) == generate_code(
            kind, random.Random(5).randbytes
        )


def test_short_codes_are_uniform_enough() -> None:
    rng = random.Random(3)
    counts = dict.fromkeys(SHORT_ALPHABET, 0)
    for _ in range(2000):
        for ch in generate_code(CodeKind.SHORT, rng.randbytes):
            counts[ch] += 1
    expected = 12000 / len(SHORT_ALPHABET)
    assert all(0.7 * expected < c < 1.3 * expected for c in counts.values())


@pytest.mark.parametrize("text", ["", "ABCDE", "ABCDEFG", "ABCDE0", "I11111", 42, None])
def test_invalid_codes(text: object) -> None:
    with pytest.raises(BadFormat):
        parse_code(text)


@given(st.text(max_size=40))
def test_parser_raises_only_protocol_errors(text: str) -> None:
    with contextlib.suppress(ProtocolError):
        parse_code(text)


def test_policy_defaults_as_france_ran_them() -> None:
    policy = CodePolicy()
    assert policy.lifetime(CodeKind.SHORT) == 3600
    assert policy.lifetime(CodeKind.LONG) == 7 * 86400
    assert policy.short_reuse_delay == 86400


def test_guessing_is_hopeless() -> None:
    assert code_space(CodeKind.SHORT) == 31**6
    # 10,000 live short codes, 1,000 guesses within their hour: about 1 %.
    assert guess_probability(CodeKind.SHORT, 10_000, 1_000) < 0.012
    assert guess_probability(CodeKind.LONG, 10**7, 10**9) < 1e-20
