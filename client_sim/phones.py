"""Simulated phones: the real ``Phone`` with its tuples kept in one shared numpy table.

Ten thousand phones each holding 384 ``EbidTuple`` objects would cost gigabytes; a table of
(phone, epoch) -> (EBID, ECC) costs 9 bytes a cell. It also keeps past epochs, so the HELLOs a
phone broadcast earlier can be rebuilt, bit for bit, when someone who heard them reports.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Mapping
from typing import Protocol

import aiohttp
import numpy as np
import numpy.typing as npt

from phone.client import Phone
from phone.dummies import dummy_contacts
from phone.state import NotRegistered, PhoneState
from protocol.auth import b64decode
from protocol.codes import dummy_code
from protocol.contacts import Contact
from protocol.epochs import epoch_of
from protocol.hello import build_hellos
from protocol.tuples import EbidTuple, TupleColumns, open_bundle, parse_tuple_columns
from protocol.types import MacKey, RandomSource


class TupleTable:
    """EBID and ECC of every phone for every epoch of a run."""

    def __init__(self, phones: int, first_epoch: int, epochs: int) -> None:
        self.first_epoch = first_epoch
        self.ebid = np.zeros((phones, epochs), dtype=np.uint64)
        self.ecc = np.zeros((phones, epochs), dtype=np.uint8)
        self.have = np.zeros((phones, epochs), dtype=np.bool_)

    def put(self, phone: int, tuples: TupleColumns) -> None:
        """Store a decrypted bundle (epochs outside the run are ignored)."""
        cols = tuples.epochs - self.first_epoch
        ok = (cols >= 0) & (cols < self.ebid.shape[1])
        self.ebid[phone, cols[ok]] = np.frombuffer(tuples.ebids, dtype=">u8")[ok]
        self.ecc[phone, cols[ok]] = np.frombuffer(tuples.eccs, dtype=np.uint8)[ok]
        self.have[phone, cols[ok]] = True

    def get(self, phone: int, epoch: int) -> EbidTuple | None:
        """The phone's tuple for ``epoch``, if it was ever handed one."""
        col = epoch - self.first_epoch
        if not 0 <= col < self.ebid.shape[1] or not self.have[phone, col]:
            return None
        return EbidTuple(
            epoch,
            int(self.ebid[phone, col]).to_bytes(8, "big"),
            bytes([int(self.ecc[phone, col])]),
        )


class SimPhoneState(PhoneState):
    """A ``PhoneState`` whose tuples live in a ``TupleTable`` row.

    It also remembers its MAC key after unregistering, because HELLOs it sent before are
    still in other phones' memory and may be reported later.
    """

    def __init__(self, index: int, table: TupleTable) -> None:
        super().__init__()
        self.index = index
        self.table = table
        self.hello_key: MacKey | None = None

    def store_bundle(self, bundle_b64: str, now_ntp: int) -> None:
        """Decrypt the bundle and keep its tuples as columns of the shared table."""
        if self.k_ea is None:
            raise NotRegistered("no tuple key: register first")
        bundle = b64decode(bundle_b64, "tuples", None, max_size=1 << 20)
        self.table.put(self.index, parse_tuple_columns(open_bundle(self.k_ea, bundle)))
        self.hello_key = self.k_a

    def current_tuple(self, now_ntp: int) -> EbidTuple | None:
        """The tuple of ``now_ntp``'s epoch, from the shared table."""
        return self.table.get(self.index, self.current_epoch(now_ntp))

    def current_hello(self, now_ntp: int) -> bytes | None:
        """The HELLO this phone broadcast (or broadcasts) at ``now_ntp``: ``broadcast_hellos``
        for one sender."""
        sender, at = np.array([self.index]), np.array([now_ntp], dtype=np.int64)
        built, hello = broadcast_hellos({self.index: self}, self.table, sender, at, self.time_start)
        return hello if built[0] else None


class SimPhone(Phone):
    """A ``Phone`` of the simulated town: its state is a ``SimPhoneState``."""

    def __init__(
        self,
        index: int,
        table: TupleTable,
        server_url: str,
        clock: Callable[[], float] = time.time,
        random: RandomSource = secrets.token_bytes,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.sim_state = SimPhoneState(index, table)
        super().__init__(server_url, clock, random, session, state=self.sim_state)

    async def dummy_report_shaped(self, shape: list[Contact]) -> str:
        """``Phone.dummy_report`` shaped like ``shape`` (what this phone heard: the simulator
        keeps no phone's HELLOs until it reports, so it gives the shape)."""
        contacts = [c.to_fields() for c in dummy_contacts(shape, self.random)]
        return await self._report({"token": dummy_code(self.random), "contacts": contacts})

    @property
    def index(self) -> int:
        """The phone's row in the town."""
        return self.sim_state.index

    @property
    def table(self) -> TupleTable:
        """The shared tuple table."""
        return self.sim_state.table

    @property
    def hello_key(self) -> MacKey | None:
        """The MAC key its past HELLOs were made with (kept after unregistering)."""
        return self.sim_state.hello_key

    @hello_key.setter
    def hello_key(self, key: MacKey | None) -> None:
        self.sim_state.hello_key = key


class HelloKeyHolder(Protocol):
    """A sender of simulated HELLOs: the key its HELLOs were made with."""

    @property
    def hello_key(self) -> MacKey | None:
        """K_A of the sender, or None if it never registered."""
        ...


def broadcast_hellos(
    phones: Mapping[int, HelloKeyHolder],
    table: TupleTable,
    senders: npt.NDArray[np.int64],
    times: npt.NDArray[np.int64],
    time_start: int,
) -> tuple[npt.NDArray[np.bool_], bytes]:
    """The HELLOs ``senders[i]`` broadcast at ``times[i]``, each with the sender's K_A and its
    tuple of that epoch: (which senders had both then, the HELLOs of those, concatenated),
    built in one ``protocol.hello.build_hellos`` batch."""
    epochs = epoch_of(times, time_start)  # type: ignore[arg-type]  # elementwise on arrays
    cols: npt.NDArray[np.int64] = np.asarray(epochs, dtype=np.int64) - table.first_epoch
    built = (cols >= 0) & (cols < table.ebid.shape[1])
    built[built] = table.have[senders[built], cols[built]]
    keys = [phones[s].hello_key for s in senders.tolist()]
    built &= np.array([k is not None for k in keys], dtype=bool)
    chosen = np.flatnonzero(built)
    hellos = build_hellos(
        [key for i in chosen.tolist() if (key := keys[i]) is not None],
        table.ecc[senders[chosen], cols[chosen]].tobytes(),
        table.ebid[senders[chosen], cols[chosen]].astype(">u8").tobytes(),
        times[chosen],
    )
    return built, hellos
