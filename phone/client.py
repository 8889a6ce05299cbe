"""The phone's HTTP client: register, ask for status, report, unregister, delete history.

``Phone`` holds a ``PhoneState`` (keys, tuples, heard HELLOs) and a clock, and moves what the
state builds over HTTP. It is the ``HelloSource`` and ``HelloSink`` the radio (``ble/``) and
the simulator (``client_sim/``) feed.
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

from phone.state import NotRegistered, PhoneState
from protocol.auth import RequestKind, b64decode, b64encode
from protocol.contacts import HelloRecord
from protocol.epochs import ntp_from_unix
from protocol.pow import solve
from protocol.registration import private_key_from_random, public_key_spki
from protocol.tuples import EbidTuple
from protocol.types import MacKey, RandomSource

API = "/api/v1"
JSON_HEADERS = {"Content-Type": "application/json"}


class PhoneError(Exception):
    """The server refused a request (``status`` and ``code`` say why), or the phone cannot
    make it (``status`` 0)."""

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
        state: PhoneState | None = None,
    ) -> None:
        self.server_url = server_url.rstrip("/")
        self.clock = clock
        self.random = random
        self.state = state if state is not None else PhoneState()
        self._session = session
        self._own_session = session is None
        self.last_status: StatusResult | None = None

    # --- the state, seen from outside ------------------------------------------------------
    @property
    def registered(self) -> bool:
        """True once the phone holds its keys."""
        return self.state.registered

    @property
    def k_a(self) -> MacKey | None:
        """The registration's MAC key (None before registering)."""
        return self.state.k_a

    @property
    def time_start(self) -> int:
        """The service start the server announced."""
        return self.state.time_start

    @time_start.setter
    def time_start(self, value: int) -> None:
        self.state.time_start = value

    @property
    def heard(self) -> dict[tuple[bytes, bytes], list[HelloRecord]]:
        """HELLOs heard, by (EBID, ECC)."""
        return self.state.heard

    @heard.setter
    def heard(self, value: dict[tuple[bytes, bytes], list[HelloRecord]]) -> None:
        self.state.heard = value

    def now_ntp(self) -> int:
        """The phone's clock in NTP seconds."""
        return ntp_from_unix(self.clock())

    def current_tuple(self) -> EbidTuple | None:
        """The tuple of the current epoch, if the phone has one."""
        return self.state.current_tuple(self.now_ntp())

    def current_hello(self, now_ntp: int) -> bytes | None:
        """The HELLO to advertise at ``now_ntp`` (``HelloSource``)."""
        return self.state.current_hello(now_ntp)

    def record_hello(self, hello: bytes, received_ntp: int, rssi_calibrated: int) -> None:
        """Keep a HELLO heard over the air (``HelloSink``)."""
        self.state.record_hello(hello, received_ntp, rssi_calibrated)

    def record_hellos(
        self, hellos: bytes, received_ntp: Sequence[int], rssi_calibrated: Sequence[int]
    ) -> None:
        """Keep HELLOs heard together, concatenated (16 bytes each)."""
        self.state.record_hellos(hellos, received_ntp, rssi_calibrated)

    def auth_fields(self, kind: RequestKind) -> dict[str, Any]:
        """The body of an authenticated request of ``kind`` now."""
        try:
            return self.state.auth_fields(kind, self.now_ntp())
        except NotRegistered as exc:
            raise PhoneError(0, "not_registered", str(exc)) from None

    # --- plumbing --------------------------------------------------------------------------
    @property
    def session(self) -> aiohttp.ClientSession:
        """The HTTP session (created on first use unless one was given)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        """Close the HTTP session if the phone opened it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

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

    # --- requests --------------------------------------------------------------------------
    async def register(self) -> None:
        """Pass the gate, run the ECDH key agreement, and keep the first tuples."""
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
        self.state.enrol(
            private, server_spki, int(body["timeStart"]), body["tuples"], self.now_ntp()
        )

    async def check_status(self) -> StatusResult:
        """Ask whether this phone is at risk; keep fresh tuples if the server sends them."""
        fields = self.auth_fields(RequestKind.STATUS)
        _, body = await self._call("POST", f"{API}/status", fields)
        if body.get("tuples"):
            self.state.store_bundle(body["tuples"], self.now_ntp())
        self.last_status = StatusResult(
            bool(body["atRisk"]),
            int(body.get("riskLevel", 4 if body["atRisk"] else 0)),
            body.get("lastContactDate"),
            bool(body.get("tuples")),
        )
        return self.last_status

    async def report(self, code: str) -> None:
        """Upload the HELLOs heard, gated by a submission code."""
        contacts = [c.to_fields() for c in self.state.contacts(self.now_ntp())]
        await self._call("POST", f"{API}/report", {"token": code, "contacts": contacts})

    async def unregister(self) -> None:
        """Leave the service: the server forgets this registration."""
        await self._call("POST", f"{API}/unregister", self.auth_fields(RequestKind.UNREGISTER))
        self.state.forget()

    async def delete_history(self) -> None:
        """Ask the server to forget this phone's exposures."""
        body = self.auth_fields(RequestKind.DELETE_HISTORY)
        await self._call("POST", f"{API}/deleteExposureHistory", body)

    # --- persistence -----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """What the app stores on disk."""
        try:
            saved = self.state.to_state(self.now_ntp())
        except NotRegistered as exc:
            raise PhoneError(0, "not_registered", str(exc)) from None
        return {"server": self.server_url, **saved}

    def load_state(self, saved: dict[str, Any]) -> None:
        """Restore what ``to_state`` saved."""
        self.state.load_state(saved)

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
