"""Shared fixtures of the protocol tests: deterministic keys and random sources."""

import random
from collections.abc import Callable

import pytest

from protocol.types import EbidKey, FederationKey, IdA, MacKey, TupleKey, id_a


@pytest.fixture
def rng() -> random.Random:
    return random.Random(1234)


@pytest.fixture
def randbytes(rng: random.Random) -> Callable[[int], bytes]:
    return rng.randbytes


@pytest.fixture
def k_s(rng: random.Random) -> EbidKey:
    return EbidKey(rng.randbytes(24))


@pytest.fixture
def k_g(rng: random.Random) -> FederationKey:
    return FederationKey(rng.randbytes(32))


@pytest.fixture
def k_a(rng: random.Random) -> MacKey:
    return MacKey(rng.randbytes(32))


@pytest.fixture
def k_ea(rng: random.Random) -> TupleKey:
    return TupleKey(rng.randbytes(32))


@pytest.fixture
def owner(rng: random.Random) -> IdA:
    return id_a(rng.randbytes(5))
