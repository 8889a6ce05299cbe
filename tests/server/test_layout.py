"""The Redis store's registration layout: what is unpacked is what was packed, as the same
frozen types (``unpack_registration`` sets the fields through their slots)."""

from __future__ import annotations

import dataclasses
import random

import pytest

from protocol.types import MacKey, TupleKey, id_a
from server.store.base import NEVER, Registration, RiskState
from server.store.redis import pack_registration, unpack_registration


@pytest.mark.parametrize("seed", range(20))
def test_unpack_is_the_inverse_of_pack(seed: int) -> None:
    rng = random.Random(seed)
    registration = Registration(
        id_a(rng.randbytes(5)),
        MacKey(rng.randbytes(32)),
        TupleKey(rng.randbytes(32)),
        rng.choice([NEVER, rng.randrange(2**31)]),
        rng.randrange(2**32),
        RiskState(rng.random() < 0.5, rng.choice([0, 4]), rng.randrange(-1, 2**20), NEVER),
    )
    back = unpack_registration(registration.id_a, pack_registration(registration))
    assert back == registration
    assert type(back) is Registration
    assert type(back.k_a) is MacKey and type(back.k_ea) is TupleKey
    assert back.k_a.material == registration.k_a.material
    with pytest.raises(dataclasses.FrozenInstanceError):
        back.k_a = registration.k_ea  # type: ignore[misc]
