"""What the app holds between requests: its keys, its tuples, the HELLOs it heard.

No I/O and no clock: every method that depends on time takes the phone's time in NTP seconds.
Every message is built with ``protocol/``; ``phone.client`` moves them over HTTP.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from protocol.auth import RequestKind, b64decode, b64encode, build_request
from protocol.contacts import Contact, HelloRecord
from protocol.epochs import epoch_of
from protocol.errors import ProtocolError
from protocol.hello import Hello, build_hello, split_hellos
from protocol.registration import agree
from protocol.scoring import CONTAGIOUS_PERIOD_DAYS
from protocol.tuples import EbidTuple, decrypt_bundle
from protocol.types import MacKey, TupleKey

MAX_BUNDLE_BYTES = 1 << 20


class NotRegistered(Exception):
    """The phone holds no registration (or no tuple for now) for what was asked."""


class PhoneState:
    """A phone's registration keys, tuples and heard HELLOs [robert.md: Registration, HELLO
    message, Report]."""

    def __init__(self) -> None:
        self.k_a: MacKey | None = None
        self.k_ea: TupleKey | None = None
        self.time_start = 0
        self.tuples: dict[int, EbidTuple] = {}
        self.heard: dict[tuple[bytes, bytes], list[HelloRecord]] = {}

    @property
    def registered(self) -> bool:
        """True once the phone holds its keys."""
        return self.k_a is not None

    # --- registration and tuples -----------------------------------------------------------
    def enrol(
        self,
        private_key: ec.EllipticCurvePrivateKey,
        server_spki: bytes,
        time_start: int,
        bundle_b64: str,
        now_ntp: int,
    ) -> None:
        """Take a registration answer: derive K_A and K_EA, keep the service start and the
        first tuples."""
        self.k_a, self.k_ea = agree(private_key, server_spki)
        self.time_start = time_start
        self.store_bundle(bundle_b64, now_ntp)

    def store_bundle(self, bundle_b64: str, now_ntp: int) -> None:
        """Decrypt a tuple bundle and keep its tuples (and forget those already past)."""
        if self.k_ea is None:
            raise NotRegistered("no tuple key: register first")
        bundle = b64decode(bundle_b64, "tuples", None, max_size=MAX_BUNDLE_BYTES)
        for t in decrypt_bundle(self.k_ea, bundle):
            self.tuples[t.epoch_id] = t
        oldest = self.current_epoch(now_ntp) - 1
        last = self.last_tuple()
        self.tuples = {e: t for e, t in self.tuples.items() if e >= oldest}
        if not self.tuples and last is not None:
            self.tuples[last.epoch_id] = last  # the apps' fallback for their requests

    def forget(self) -> None:
        """Drop the registration (after unregistering); heard HELLOs are kept."""
        self.k_a = self.k_ea = None
        self.tuples.clear()

    def current_epoch(self, now_ntp: int) -> int:
        """The epoch ``now_ntp`` is in."""
        return epoch_of(now_ntp, self.time_start)

    def current_tuple(self, now_ntp: int) -> EbidTuple | None:
        """The tuple of the epoch of ``now_ntp``, if the phone has one."""
        return self.tuples.get(self.current_epoch(now_ntp))

    def last_tuple(self) -> EbidTuple | None:
        """The tuple of the latest epoch the phone holds, if any."""
        return self.tuples[max(self.tuples)] if self.tuples else None

    # --- Bluetooth side: what to send, what was heard --------------------------------------
    def current_hello(self, now_ntp: int) -> bytes | None:
        """The 16-byte HELLO to advertise at ``now_ntp`` (None without a tuple for now)."""
        if self.k_a is None:
            return None
        t = self.current_tuple(now_ntp)
        if t is None:
            return None
        return build_hello(self.k_a, t.ecc, t.ebid, now_ntp).to_bytes()

    def record_hello(self, hello: bytes, received_ntp: int, rssi_calibrated: int) -> None:
        """Keep a HELLO heard over the air (malformed ones are ignored, as the app did)."""
        try:
            parsed = Hello.parse(hello)
        except ProtocolError:
            return
        self._keep(parsed, received_ntp, rssi_calibrated)

    def record_hellos(
        self, hellos: bytes, received_ntp: Sequence[int], rssi_calibrated: Sequence[int]
    ) -> None:
        """``record_hello`` for HELLOs heard together, concatenated (16 bytes each)."""
        for parsed, received, rssi in zip(
            split_hellos(hellos), received_ntp, rssi_calibrated, strict=True
        ):
            self._keep(parsed, received, rssi)

    def _keep(self, hello: Hello, received_ntp: int, rssi_calibrated: int) -> None:
        self.heard.setdefault((hello.ebid, hello.ecc), []).append(
            HelloRecord(received_ntp, hello.time, hello.mac, rssi_calibrated)
        )

    def contacts(self, now_ntp: int) -> list[Contact]:
        """The HELLOs heard within the contagious period, grouped by EBID: a report's
        ``contacts``."""
        oldest = now_ntp - CONTAGIOUS_PERIOD_DAYS * 86_400
        out = []
        for (ebid, ecc), records in self.heard.items():
            recent = tuple(r for r in records if r.time_collected >= oldest)
            if recent:
                out.append(Contact(ebid, ecc, recent))
        return out

    # --- authenticated requests ------------------------------------------------------------
    def auth_fields(self, kind: RequestKind, now_ntp: int) -> dict[str, Any]:
        """The body of a status, unregister or delete-history request at ``now_ntp``, with
        the current epoch's EBID or, as the apps do when they hold none, the last one."""
        if self.k_a is None:
            raise NotRegistered("register first")
        current = self.current_tuple(now_ntp) or self.last_tuple()
        if current is None:
            raise NotRegistered("no tuple left: register again")
        return build_request(self.k_a, kind, current.ebid, current.epoch_id, now_ntp).to_fields()

    # --- persistence (the Bluetooth client keeps its registration across runs) -------------
    def to_state(self, now_ntp: int) -> dict[str, Any]:
        """What the app stores on disk."""
        if self.k_a is None or self.k_ea is None:
            raise NotRegistered("nothing to save")
        return {
            "k_a": b64encode(self.k_a.material),
            "k_ea": b64encode(self.k_ea.material),
            "timeStart": self.time_start,
            "tuples": [
                [t.epoch_id, b64encode(t.ebid), b64encode(t.ecc)] for t in self.tuples.values()
            ],
            "heard": [c.to_fields() for c in self.contacts(now_ntp)],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what ``to_state`` saved."""
        self.k_a = MacKey(b64decode(state["k_a"], "k_a", 32))
        self.k_ea = TupleKey(b64decode(state["k_ea"], "k_ea", 32))
        self.time_start = int(state["timeStart"])
        self.tuples = {
            e: EbidTuple(e, b64decode(ebid, "ebid", 8), b64decode(ecc, "ecc", 1))
            for e, ebid, ecc in state["tuples"]
        }
        for fields in state.get("heard", []):
            contact = Contact.from_fields(fields)
            self.heard[(contact.ebid, contact.ecc)] = list(contact.records)
