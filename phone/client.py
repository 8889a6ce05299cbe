"""The phone's HTTP client: register, ask for status, report, unregister, delete history.

``Phone`` holds a ``PhoneState`` (keys, tuples, heard HELLOs) and a clock, and moves what the
state builds over HTTP. It is the ``HelloSource`` and ``HelloSink`` the radio (``ble/``) and
the simulator (``client_sim/``) feed.

It speaks ``/api/v6`` as the TousAntiCovid apps do [robert.md: the contract the real apps hold
the server to], and reads answers as they do: an answer without a field they require is a
failure (``not_app_answer``), a 430 to a status request means "register again" (the phone
forgets its registration, as the apps reset theirs).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from phone.dummies import dummy_contacts
from phone.state import NotRegistered, PhoneState
from protocol.auth import RequestKind, b64decode, b64encode
from protocol.codes import dummy_code
from protocol.contacts import HelloRecord
from protocol.epochs import ntp_from_unix, ntp_of_day
from protocol.pow import solve
from protocol.registration import private_key_from_random, public_key_spki
from protocol.tuples import EbidTuple
from protocol.types import MacKey, RandomSource

API = "/api/v6"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
REGISTER_AGAIN = 430
"""The status code on which the apps drop their registration and register again."""

CaptchaSolver = Callable[[str, bytes], str]
"""Reads a captcha for the phone: given its kind ("IMAGE") and the PNG, the answer (a person
at a screen, or a test that knows it)."""


class PhoneError(Exception):
    """The server refused a request (``status`` and ``code`` say why), or the phone cannot
    make it (``status`` 0)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class StatusResult:
    """What the app keeps of a status answer (the apps' ``StatusReport``)."""

    risk_level: float
    last_contact_ntp: int | None
    last_risk_scoring_ntp: int | None
    declaration_token: str | None
    analytics_token: str | None

    @property
    def at_risk(self) -> bool:
        """The apps alert on any level above 0."""
        return self.risk_level > 0

    @property
    def last_contact_date(self) -> str | None:
        """``lastContactDate`` as the server sent it (NTP seconds, a string)."""
        return None if self.last_contact_ntp is None else str(self.last_contact_ntp)


def service_start_ntp(service_start_date: str) -> int:
    """The service start in NTP seconds from ``GET /clock``'s ``serviceStartDate``."""
    try:
        return ntp_of_day(date.fromisoformat(service_start_date))
    except ValueError:
        raise PhoneError(0, "not_app_answer", "serviceStartDate is not a date") from None


def _need(body: Any, name: str, kind: type | tuple[type, ...]) -> Any:
    """``body[name]`` if it has the type an app decodes it as, else the app's failure."""
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise PhoneError(0, "not_app_answer", f"the answer has no {name} the apps can read")
    return value


def _optional(body: dict[str, Any], name: str, kind: type) -> Any:
    value = body.get(name)
    if value is not None and not isinstance(value, kind):
        raise PhoneError(0, "not_app_answer", f"{name} is not what the apps read")
    return value


def _ntp_string(body: dict[str, Any], name: str) -> int | None:
    """An NTP time the apps read from a string (``toLongOrNull``): None if absent."""
    value = _optional(body, name, str)
    return int(value) if value is not None and value.isdigit() else None


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
    async def register(self, solver: CaptchaSolver | None = None, locale: str = "en") -> None:
        """Pass the gate, run the ECDH key agreement, and keep the first tuples.

        With a ``solver`` the phone asks for an image captcha, as the apps do; without one it
        asks for a proof of work (a server in ``pow`` or ``off`` mode gives one) and a server
        that wants a person refuses with ``captcha_type``.
        """
        _, server_key = await self._call("GET", f"{API}/publicKey")
        kind = "IMAGE" if solver is not None else "POW"
        _, made = await self._call("POST", f"{API}/captcha", {"type": kind, "locale": locale})
        captcha_id = _need(made, "id", str)
        if solver is not None:
            answer = solver(kind, await self.captcha_image(captcha_id))
        else:
            answer = solve(captcha_id, int(_need(made, "difficulty", int)))
        private = private_key_from_random(self.random)
        _, body = await self._call(
            "POST",
            f"{API}/register",
            {
                "captcha": answer,
                "captchaId": captcha_id,
                "clientPublicECDHKey": b64encode(public_key_spki(private)),
            },
        )
        tuples, time_start = _need(body, "tuples", str), _need(body, "timeStart", int)
        server_spki = b64decode(server_key["publicKey"], "publicKey", None)
        self.state.enrol(private, server_spki, time_start, tuples, self.now_ntp())

    async def captcha_image(self, captcha_id: str) -> bytes:
        """``GET /captcha/{id}/image``: the PNG the apps show."""
        url = f"{self.server_url}{API}/captcha/{captcha_id}/image"
        async with self.session.get(url, headers={"Accept": "image/png"}) as response:
            data = await response.read()
            if response.status != 200 or response.content_type != "image/png":
                raise PhoneError(response.status, "captcha_image", "no captcha image")
            return data

    async def check_status(self) -> StatusResult:
        """Ask whether this phone is at risk, and keep the fresh tuples every answer carries.

        A 430 means the server has no registration (or no key) for this phone any more: it
        forgets its registration, as the apps do, and the caller registers again."""
        fields = self.auth_fields(RequestKind.STATUS)
        try:
            _, body = await self._call("POST", f"{API}/status", fields)
        except PhoneError as exc:
            if exc.status == REGISTER_AGAIN:
                self.state.forget()
            raise
        risk = _need(body, "riskLevel", (int, float))
        self.state.store_bundle(_need(body, "tuples", str), self.now_ntp())
        self.last_status = StatusResult(
            float(risk),
            _ntp_string(body, "lastContactDate"),
            _ntp_string(body, "lastRiskScoringDate"),
            _optional(body, "declarationToken", str),
            _optional(body, "analyticsToken", str),
        )
        return self.last_status

    async def report(self, code: str) -> str:
        """Upload the HELLOs heard, gated by a submission code: the report validation token
        (the iOS app fails without one)."""
        contacts = [c.to_fields() for c in self.state.contacts(self.now_ntp())]
        return await self._report({"token": code, "contacts": contacts})

    async def dummy_report(self) -> str:
        """A dummy report (``phone.dummies``): shaped like the report this phone would send
        now, answered alike, changing nothing. Its token is worthless."""
        shape = self.state.contacts(self.now_ntp())
        contacts = [c.to_fields() for c in dummy_contacts(shape, self.random)]
        return await self._report({"token": dummy_code(self.random), "contacts": contacts})

    async def _report(self, body: dict[str, Any]) -> str:
        _, answer = await self._call("POST", f"{API}/report", body)
        if _optional(answer, "success", bool) is False:
            raise PhoneError(200, "report_failed", str(answer.get("message")))
        token: str = _need(answer, "reportValidationToken", str)
        return token

    async def unregister(self) -> None:
        """Leave the service: the server forgets this registration."""
        body = self.auth_fields(RequestKind.UNREGISTER)
        _, answer = await self._call("POST", f"{API}/unregister", body)
        _need(answer, "success", bool)
        self.state.forget()

    async def delete_history(self) -> None:
        """Ask the server to forget this phone's exposures."""
        body = self.auth_fields(RequestKind.DELETE_HISTORY)
        _, answer = await self._call("POST", f"{API}/deleteExposureHistory", body)
        _need(answer, "success", bool)

    async def server_clock(self) -> tuple[str, str, int]:
        """``GET /clock``: (service start date, server time in ISO 8601, current epoch)."""
        _, body = await self._call("GET", f"{API}/clock")
        return (
            _need(body, "serviceStartDate", str),
            _need(body, "time", str),
            _need(body, "epoch", int),
        )

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
            try:
                await phone.register()
            except BaseException:
                await phone.close()  # no session left open when the server cannot be reached
                raise
            phone.save(state_path)
        return phone

    def save(self, state_path: Path) -> None:
        """Write the state file (mode 0600: it holds the registration keys)."""
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_state()))
        tmp.chmod(0o600)
        tmp.replace(state_path)
