"""The phone, app side: what the StopCovid app holds and how it talks to the server.

One ``Phone`` serves the simulator (HELLOs fed by a radio model) and the Bluetooth client
(HELLOs fed by a real scanner): it holds the registration keys, the tuples, the HELLOs heard and
the last status, and speaks the HTTP API. Every message is built with ``protocol/``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from protocol.auth import RequestKind, b64decode, b64encode, build_request
from protocol.contacts import Contact, HelloRecord
from protocol.epochs import epoch_of, ntp_from_unix
from protocol.errors import ProtocolError
from protocol.hello import Hello, build_hello, split_hellos
from protocol.registration import agree, private_key_from_random, public_key_spki
from protocol.scoring import DEFAULT_SCORING
from protocol.tuples import EbidTuple, decrypt_bundle
from protocol.types import MacKey, RandomSource, TupleKey
from server.captcha import solve

API = "/api/v1"
JSON_HEADERS = {"Content-Type": "application/json"}


class PhoneError(Exception):
    """The server refused a request; ``status`` and ``code`` say why."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class StatusResult:
    """What the app shows after a status request."""

    at_risk: bool
    risk_level: int
    last_contact_date: str | None
    got_tuples: bool


class Phone:
    """A registered (or registering) phone talking to one server."""

    def __init__(
        self,
        server_url: str,
        clock: Callable[[], float] = time.time,
        random: RandomSource = secrets.token_bytes,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.clock = clock
        self.random = random
        self._session = session
        self._own_session = session is None
        self.k_a: MacKey | None = None
        self.k_ea: TupleKey | None = None
        self.time_start = 0
        self.tuples: dict[int, EbidTuple] = {}
        self.heard: dict[tuple[bytes, bytes], list[HelloRecord]] = {}
        self.last_status: StatusResult | None = None

    # --- plumbing --------------------------------------------------------------------------
    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the HTTP session if the phone opened it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def now_ntp(self) -> int:
        """The phone's clock in NTP seconds."""
        return ntp_from_unix(self.clock())

    async def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data_out = None if body is None else orjson.dumps(body)
        headers = JSON_HEADERS if body is not None else None
        url = self.server_url + path
        async with self.session.request(method, url, data=data_out, headers=headers) as response:
            try:
                data = orjson.loads(await response.read())
            except orjson.JSONDecodeError:
                raise PhoneError(response.status, "not_json", "the answer is not JSON") from None
            if response.status >= 400:
                error = data if isinstance(data, dict) else {}
                raise PhoneError(response.status, error.get("error", ""), error.get("message", ""))
            return response.status, data

    @property
    def registered(self) -> bool:
        """True once the phone holds its keys."""
        return self.k_a is not None

    # --- registration and tuples -----------------------------------------------------------
    async def register(self) -> None:
        """Solve the gate, run the ECDH key agreement, and store the first tuples."""
        _, server_key = await self._call("GET", f"{API}/publicKey")
        _, challenge = await self._call("POST", f"{API}/captcha", {})
        answer = solve(challenge["id"], int(challenge["difficulty"]))
        private = private_key_from_random(self.random)
        _, body = await self._call(
            "POST",
            f"{API}/register",
            {
                "captcha": answer,
                "captchaId": challenge["id"],
                "clientPublicECDHKey": b64encode(public_key_spki(private)),
            },
        )
        server_spki = b64decode(server_key["publicKey"], "publicKey", None)
        self.k_a, self.k_ea = agree(private, server_spki)
        self.time_start = int(body["timeStart"])
        self._store_tuples(body["tuples"])

    def _store_tuples(self, bundle_b64: str) -> None:
        assert self.k_ea is not None
        bundle = b64decode(bundle_b64, "tuples", None, max_size=1 << 20)
        for t in decrypt_bundle(self.k_ea, bundle):
            self.tuples[t.epoch_id] = t
        oldest = self.current_epoch() - 1
        self.tuples = {e: t for e, t in self.tuples.items() if e >= oldest}

    def current_epoch(self) -> int:
        """The epoch the phone's clock is in."""
        return epoch_of(self.now_ntp(), self.time_start)

    def current_tuple(self) -> EbidTuple | None:
        """The tuple to broadcast now, if the phone has one."""
        return self.tuples.get(self.current_epoch())

    # --- Bluetooth side: what to send, what was heard --------------------------------------
    def current_hello(self, now_ntp: int) -> bytes | None:
        """The 16-byte HELLO to advertise at ``now_ntp`` (None without a tuple for now)."""
        if self.k_a is None:
            return None
        t = self.tuples.get(epoch_of(now_ntp, self.time_start))
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

    def contacts(self) -> list[Contact]:
        """The HELLOs heard within the contagious period (14 days), grouped by EBID: a report's
        ``contacts``."""
        oldest = self.now_ntp() - DEFAULT_SCORING.retention_days * 86_400
        out = []
        for (ebid, ecc), records in self.heard.items():
            recent = tuple(r for r in records if r.time_collected >= oldest)
            if recent:
                out.append(Contact(ebid, ecc, recent))
        return out

    # --- authenticated requests ------------------------------------------------------------
    def _auth_body(self, kind: RequestKind) -> dict[str, Any]:
        if self.k_a is None:
            raise PhoneError(0, "not_registered", "register first")
        current = self.current_tuple()
        if current is None:
            raise PhoneError(0, "no_tuple", "no tuple for the current epoch: register again")
        request = build_request(self.k_a, kind, current.ebid, current.epoch_id, self.now_ntp())
        return request.to_fields()

    async def check_status(self) -> StatusResult:
        """Ask whether this phone is at risk; keep fresh tuples if the server sends them."""
        _, body = await self._call("POST", f"{API}/status", self._auth_body(RequestKind.STATUS))
        if body.get("tuples"):
            self._store_tuples(body["tuples"])
        self.last_status = StatusResult(
            bool(body["atRisk"]),
            int(body.get("riskLevel", 4 if body["atRisk"] else 0)),
            body.get("lastContactDate"),
            bool(body.get("tuples")),
        )
        return self.last_status

    async def report(self, code: str) -> None:
        """Upload the HELLOs heard, gated by a submission code."""
        contacts = [c.to_fields() for c in self.contacts()]
        await self._call("POST", f"{API}/report", {"token": code, "contacts": contacts})

    async def unregister(self) -> None:
        """Leave the service: the server forgets this registration."""
        await self._call("POST", f"{API}/unregister", self._auth_body(RequestKind.UNREGISTER))
        self.k_a = self.k_ea = None
        self.tuples.clear()

    async def delete_history(self) -> None:
        """Ask the server to forget this phone's exposures."""
        body = self._auth_body(RequestKind.DELETE_HISTORY)
        await self._call("POST", f"{API}/deleteExposureHistory", body)

    # --- persistence (the Bluetooth client keeps its registration across runs) -------------
    def to_state(self) -> dict[str, Any]:
        """What the app stores on disk."""
        if self.k_a is None or self.k_ea is None:
            raise PhoneError(0, "not_registered", "nothing to save")
        return {
            "server": self.server_url,
            "k_a": b64encode(self.k_a.material),
            "k_ea": b64encode(self.k_ea.material),
            "timeStart": self.time_start,
            "tuples": [
                [t.epoch_id, b64encode(t.ebid), b64encode(t.ecc)] for t in self.tuples.values()
            ],
            "heard": [c.to_fields() for c in self.contacts()],
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

    @classmethod
    async def load_or_register(
        cls, state_path: Path, server_url: str, clock: Callable[[], float] = time.time
    ) -> Phone:
        """The phone saved at ``state_path``, or a new registration saved there."""
        phone = cls(server_url, clock)
        if state_path.exists():
            phone.load_state(json.loads(state_path.read_text()))
        else:
            await phone.register()
            phone.save(state_path)
        return phone

    def save(self, state_path: Path) -> None:
        """Write the state file (mode 0600: it holds the registration keys)."""
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_state()))
        tmp.chmod(0o600)
        tmp.replace(state_path)
