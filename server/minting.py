"""Tuple bundles for concurrent requests, minted together.

Minting a bundle means a few hundred SKINNY encryptions under up to five day keys; the batch
cipher has a fixed cost per call that dwarfs a single phone's blocks. Requests that reach this
point during the same event-loop iteration are therefore minted in ONE grouped batch
(``protocol.tuples.mint``), then each bundle is encrypted under its own K_EA, with IVs drawn
in one call for the batch (one ``getrandom`` instead of one per bundle). A bundle comes back as
base64 in two pieces (ASCII bytes, ``protocol.tuples.seal_bundle_parts``): the status answer
writes them into its JSON as they are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date

from protocol.tuples import IV_SIZE, mint, seal_bundle_parts
from protocol.types import EbidKey, FederationKey, IdA, TupleKey

_Pending = tuple[IdA, TupleKey, range, "asyncio.Future[tuple[bytes, bytes]]"]


class TupleMinter:
    """Collects bundle requests for one loop iteration and mints them in one batch."""

    def __init__(
        self,
        key_of_day: Callable[[date], EbidKey],
        k_g: Callable[[], FederationKey],
        country_code: int,
        time_start: int,
        random: Callable[[int], bytes],
    ) -> None:
        self._key_of_day = key_of_day
        self._k_g = k_g
        self._country_code = country_code
        self._time_start = time_start
        self._random = random
        self._pending: list[_Pending] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        """The loop the futures are made on (looked up once: ``get_running_loop`` makes a
        system call)."""

    def bundle(
        self, owner: IdA, k_ea: TupleKey, epochs: range
    ) -> asyncio.Future[tuple[bytes, bytes]]:
        """The encrypted bundle of ``epochs`` for one registration, to await: its base64 in
        two pieces (``seal_bundle_parts``), to be joined. A plain function, so that the caller
        can do something else (a store round trip) while the batch is minted. A caller that
        no longer wants it cancels the future: it is not minted if it has not been yet, and a
        minting error nobody awaits is not reported as never retrieved (``Future.cancel``
        clears that, done or not)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            loop = self._loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[bytes, bytes]] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._mint)
        self._pending.append((owner, k_ea, epochs, future))
        return future

    def _mint(self) -> None:
        batch = [pending for pending in self._pending if not pending[3].done()]  # not discarded
        self._pending = []
        if not batch:
            return
        try:
            sets = mint(
                [(owner, epochs) for owner, _, epochs, _ in batch],
                self._key_of_day,
                self._k_g(),
                self._country_code,
                self._time_start,
            )
        except Exception as exc:  # e.g. a K_S missing: every waiting request gets the error
            for *_, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        ivs = self._random(IV_SIZE * len(batch))
        for i, ((_, k_ea, _, future), tuples) in enumerate(zip(batch, sets, strict=True)):
            if not future.done():
                iv = ivs[IV_SIZE * i : IV_SIZE * i + IV_SIZE]
                future.set_result(seal_bundle_parts(k_ea, tuples, iv))
