"""The server as the TousAntiCovid apps (4.2) see it, through real HTTP, on both stores.

Requests are built and answers read the way the apps' own code does, written here again from
their classes rather than with this project's phone (so a mistake shared by our server and our
phone cannot hide): Android's ``StopCovidApi`` and ``Api*RQ``/``Api*RS`` (Gson: absent optional
fields are omitted, an absent required String fails the decoding), iOS's ``RBServer*Body`` and
``RBServer*Response`` (Codable: ``tuples`` and ``reportValidationToken`` are required). The
keys are agreed, tuples decrypted and MACs computed with ``cryptography`` directly, as the
apps do with their platform's crypto. Every answer is also checked against
``server/openapi.json``; every token is verified with joserfc against the published JWKS.
"""

from __future__ import annotations

import base64
import hmac
import json
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import aiohttp
import jsonschema
import pytest
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from joserfc import jwt
from joserfc.jwk import KeySet

from client_sim.clock import VirtualClock
from server.app import create_app
from server.settings import Settings
from tests.server.conftest import Running, code_service

API = "/api/v6"
NTP_OFFSET = 2_208_988_800
OPENAPI = json.loads(resources.files("server").joinpath("openapi.json").read_text())


def conforms(answer: Any, schema: str) -> None:
    """``answer`` is what server/openapi.json says ``schema`` is."""
    document = {"$ref": f"#/components/schemas/{schema}", "components": OPENAPI["components"]}
    jsonschema.validate(answer, document)


def request_conforms(path: str, body: Any) -> None:
    """``body``, as an app sends it to ``path``, is what server/openapi.json says the
    endpoint takes: the document's patterns and lengths never refuse what an app sends."""
    operation = OPENAPI["paths"][API + path]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": OPENAPI["components"]})


def b64(raw: bytes) -> str:
    """Android's Base64.NO_WRAP and iOS's base64EncodedString(): standard, padded."""
    return base64.b64encode(raw).decode()


# --- one app: its keys, tuples and the requests it builds ---------------------------------
@dataclass
class App:
    """What an app holds: its key pair, K_A and K_EA, its tuples, and the server's key."""

    server_public: ec.EllipticCurvePublicKey
    platform: str
    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    k_a: bytes = b""
    k_ea: bytes = b""
    time_start: int = 0
    tuples: dict[int, tuple[bytes, bytes]] = field(default_factory=dict)

    def register_body(self, captcha: str, captcha_id: str) -> dict[str, Any]:
        """Android's ApiRegisterV2RQ; iOS's RBServerRegisterBody adds pushInfo."""
        spki = self.private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        body: dict[str, Any] = {
            "captcha": captcha,
            "captchaId": captcha_id,
            "clientPublicECDHKey": b64(spki),
        }
        if self.platform == "ios":
            body["pushInfo"] = {"token": "ab" * 32, "locale": "fr_FR", "timezone": "Europe/Paris"}
        return body

    def registered(self, answer: dict[str, Any]) -> None:
        """ApiRegisterRS / RBServerRegisterResponse: tuples (String) and timeStart (Long)."""
        assert isinstance(answer["tuples"], str) and type(answer["timeStart"]) is int
        shared = self.private.exchange(ec.ECDH(), self.server_public)
        self.k_a = hmac.digest(shared, b"mac", "sha256")
        self.k_ea = hmac.digest(shared, b"tuples", "sha256")
        self.time_start = answer["timeStart"]
        self.keep(answer["tuples"])

    def keep(self, bundle_b64: str) -> list[int]:
        """Decrypt a bundle (IV || AES-GCM || tag) and keep its tuples; their epochs."""
        raw = base64.b64decode(bundle_b64, validate=True)
        items = json.loads(AESGCM(self.k_ea).decrypt(raw[:12], raw[12:], None))
        epochs = []
        for item in items:
            key = item["key"]
            ebid, ecc = base64.b64decode(key["ebid"]), base64.b64decode(key["ecc"])
            assert (type(item["epochId"]), len(ebid), len(ecc)) == (int, 8, 1)
            self.tuples[item["epochId"]] = (ebid, ecc)
            epochs.append(item["epochId"])
        return epochs

    def epoch(self, ntp: int) -> int:
        return (ntp - self.time_start) // 900

    def ssu(self, prefix: int, ntp: int, epoch: int | None = None) -> dict[str, Any]:
        """The apps' SSUBuilder: the current epoch's EBID, or the last one held."""
        if epoch is None:
            now = self.epoch(ntp)
            epoch = now if now in self.tuples else max(self.tuples)
        ebid = self.tuples[epoch][0]
        time = struct.pack(">I", ntp & 0xFFFFFFFF)
        mac = hmac.digest(
            self.k_a, bytes([prefix]) + ebid + struct.pack(">I", epoch) + time, "sha256"
        )
        body: dict[str, Any] = {
            "ebid": b64(ebid),
            "epochId": epoch,
            "time": b64(time),
            "mac": b64(mac),
        }
        if self.platform == "ios" and prefix == 0x02:
            body["pushInfo"] = {"token": "cd" * 32, "locale": "fr_FR", "timezone": "Europe/Paris"}
        if self.platform == "ios" and prefix == 0x03:
            body["pushToken"] = ""
        return body

    def hello(self, ntp: int) -> tuple[bytes, bytes, int, bytes]:
        """(EBID, ECC, time field, MAC) of the HELLO this app broadcasts at ``ntp``."""
        ebid, ecc = self.tuples[self.epoch(ntp)]
        time16 = ntp & 0xFFFF
        mac = hmac.digest(self.k_a, b"\x01" + ecc + ebid + struct.pack(">H", time16), "sha256")
        return ebid, ecc, time16, mac[:5]


def contacts_heard(sender: App, start: int, minutes: int, rssi: int) -> list[dict[str, Any]]:
    """ApiGroupedHellosReportRQ: what a phone heard of ``sender`` every 10 s, grouped by
    EBID and ECC (Android sends rssiRaw and rssiCalibrated, iOS too)."""
    grouped: dict[tuple[bytes, bytes], list[dict[str, Any]]] = {}
    for t in range(start, start + 60 * minutes, 10):
        ebid, ecc, time16, mac = sender.hello(t)
        grouped.setdefault((ebid, ecc), []).append(
            {
                "timeCollectedOnDevice": t + 1,
                "timeFromHelloMessage": time16,
                "mac": b64(mac),
                "rssiRaw": rssi - 10,
                "rssiCalibrated": rssi,
            }
        )
    return [{"ebid": b64(e), "ecc": b64(c), "ids": ids} for (e, c), ids in grouped.items()]


# --- the server, as a deployment would run it for the apps ---------------------------------
@dataclass
class Server:
    running: Running
    clock: VirtualClock
    session: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return self.running.url + API

    def ntp(self) -> int:
        return int(self.clock()) + NTP_OFFSET

    async def post(self, path: str, body: Any) -> tuple[int, Any]:
        request_conforms(path, body)
        async with self.session.post(self.url + path, json=body) as r:
            return r.status, await r.json()

    async def registered_app(self, platform: str) -> App:
        """An app through the whole registration screen: an image captcha, read by a person
        (here: the test, which looks the answer up in the store), then /register."""
        app = App(self.running.service.keys.ecdh_private.public_key(), platform)
        status, made = await self.post("/captcha", {"type": "IMAGE", "locale": "fr"})
        assert status == 201 and isinstance(made["id"], str)  # ApiCaptchaRS
        conforms(made, "Captcha")
        async with self.session.get(
            f"{self.url}/captcha/{made['id']}/image", headers={"Accept": "image/png"}
        ) as r:
            assert r.status == 200 and r.content_type == "image/png"
            assert (await r.read()).startswith(b"\x89PNG\r\n\x1a\n")
        stored = await self.running.service.store.get_captcha(made["id"], self.ntp())
        assert stored is not None
        status, answer = await self.post(
            "/register", app.register_body(stored.answer.lower(), made["id"])
        )
        assert status == 201, answer
        conforms(answer, "RegisterResponse")
        app.registered(answer)
        return app

    def advance_days(self, days: int) -> None:
        """Move the clock on, and make the day keys a running server's hourly task would."""
        from protocol.epochs import day_of_ntp

        self.clock.advance(days * 86400)
        service = self.running.service
        settings = service.settings
        service.keys.generate(
            day_of_ntp(self.ntp()), settings.keys_ahead_days, settings.key_retention_days
        )
        service.keys.reload()
        service.forget_keys()

    async def jwks(self) -> KeySet:
        async with self.session.get(self.running.url + "/.well-known/jwks.json") as r:
            assert r.status == 200
            document = await r.json()
        conforms(document, "JWKS")
        return KeySet.import_key_set(document)


@pytest.fixture
async def server(settings: Settings, clock: VirtualClock) -> AsyncIterator[Server]:
    """The server with the apps' gate (image captchas) and the reference's status interval."""
    from dataclasses import replace

    app_settings = replace(settings, captcha="image", status_min_interval=1800)
    codes = code_service(__import__("pathlib").Path(settings.data_dir), clock)
    test_server = TestServer(create_app(app_settings, codes, clock=clock), host="127.0.0.1")
    await test_server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Server(Running(test_server, codes), clock, session)
    finally:
        await test_server.close()


async def verified(keys: KeySet, token: str, issuer: str) -> dict[str, Any]:
    """The claims of a token that verifies under the published key, with an id and an
    expiry in the future (of the virtual clock it was issued on)."""
    decoded = jwt.decode(token, keys, algorithms=["ES256"])
    assert decoded.header["alg"] == "ES256" and decoded.header["kid"]
    claims = decoded.claims
    assert claims["iss"] == issuer and claims["exp"] > claims["iat"]
    assert isinstance(claims["jti"], str) and len(claims["jti"]) == 32
    return claims


# --- the tests -------------------------------------------------------------------------------
@pytest.mark.parametrize("platform", ["android", "ios"])
async def test_register_status_report_warn_delete_unregister(server: Server, platform: str) -> None:
    keys = await server.jwks()
    alice, bob = await server.registered_app(platform), await server.registered_app(platform)
    start = server.ntp()
    assert set(range(alice.epoch(start), alice.epoch(start) + 3 * 96)) <= set(alice.tuples)

    # Status, not at risk: riskLevel 0, fresh tuples, an analytics token, no dates.
    status, answer = await server.post("/status", bob.ssu(0x02, server.ntp()))
    assert status == 200, answer
    conforms(answer, "StatusResponse")
    assert answer["riskLevel"] == 0 and isinstance(answer["riskLevel"], int | float)
    assert not {"lastContactDate", "lastRiskScoringDate", "declarationToken"} & set(answer)
    epochs = bob.keep(answer["tuples"])
    now_epoch = bob.epoch(server.ntp())
    assert epochs[0] == now_epoch and epochs == list(range(now_epoch, epochs[-1] + 1))
    assert (epochs[-1] + 1) % 96 == 0 and len(epochs) > 3 * 96  # to the end of the 4th day
    await verified(keys, answer["analyticsToken"], "robert-server")

    # Alice and Bob spend 20 minutes close together; Alice tests positive and reports.
    heard = contacts_heard(bob, server.ntp(), minutes=20, rssi=-50)
    server.clock.advance(20 * 60)
    code = await server.running.code()
    status, answer = await server.post("/report", {"token": code, "contacts": heard})
    assert status == 200, answer
    conforms(answer, "ReportResponse")
    assert answer["success"] is True  # iOS: success != false, then reportValidationToken
    claims = await verified(keys, answer["reportValidationToken"], "robert-server")
    assert claims["exp"] - claims["iat"] == 5 * 60
    assert await server.running.worker.drain() == 1
    status, _ = await server.post("/report", {"token": code, "contacts": heard})
    assert status == 401  # the code is spent

    # Bob's next status: at risk, level 4, dates as strings of NTP seconds, a declaration.
    server.clock.advance(1800)
    status, answer = await server.post("/status", bob.ssu(0x02, server.ntp()))
    assert status == 200, answer
    conforms(answer, "StatusResponse")
    assert answer["riskLevel"] == 4
    contact_day = int(answer["lastContactDate"])  # Android: toLongOrNull()
    today = server.ntp() - server.ntp() % 86400
    assert contact_day % 86400 == 0 and today - 2 * 86400 <= contact_day <= today
    assert int(answer["lastRiskScoringDate"]) <= server.ntp()
    declaration = await verified(keys, answer["declarationToken"], "tac")
    assert declaration["lastContactDateTimestamp"] == contact_day
    assert declaration["notificationDateTimestamp"] <= server.ntp()
    bob.keep(answer["tuples"])
    # The same contact day in every answer: asking again cannot average the blur away.
    server.clock.advance(1800)
    status, again = await server.post("/status", bob.ssu(0x02, server.ntp()))
    assert (status, again["lastContactDate"]) == (200, answer["lastContactDate"])
    assert again["declarationToken"] != answer["declarationToken"]  # signed anew, same id
    assert (await verified(keys, again["declarationToken"], "tac"))["jti"] == declaration["jti"]

    # Bob deletes his exposure history: {success: true}, then no risk.
    server.clock.advance(1800)
    status, answer = await server.post("/deleteExposureHistory", bob.ssu(0x04, server.ntp()))
    assert (status, answer) == (200, {"success": True})
    server.clock.advance(1800)
    status, answer = await server.post("/status", bob.ssu(0x02, server.ntp()))
    assert (status, answer["riskLevel"]) == (200, 0)

    # Alice unregisters (as the apps do after a report): then 430, "register again".
    status, answer = await server.post("/unregister", alice.ssu(0x03, server.ntp()))
    assert (status, answer) == (200, {"success": True})
    status, answer = await server.post("/status", alice.ssu(0x02, server.ntp()))
    assert status == 430 and answer["error"] == "unknown_registration"
    if platform == "ios":
        assert await server.running.service.store.get_push_info(alice_id(server, alice)) is None


def alice_id(server: Server, app: App) -> Any:
    """The ID_A behind an app's EBIDs (the server's view; for checking what it deleted)."""
    from protocol.ebid import decrypt_ebid

    epoch = max(app.tuples)
    return decrypt_ebid(server.running.service.key_of_epoch(epoch), app.tuples[epoch][0])[1]


async def test_status_with_the_last_ebid_held(server: Server) -> None:
    """An app that has not asked for days holds no EBID for now: it sends its last one, and
    the server accepts it while that day's key is kept; from an unknown phone, 430."""
    app = await server.registered_app("android")
    server.advance_days(5)
    assert app.epoch(server.ntp()) not in app.tuples
    body = app.ssu(0x02, server.ntp())
    assert body["epochId"] == max(app.tuples) < app.epoch(server.ntp())
    status, answer = await server.post("/status", body)
    assert status == 200, answer
    assert app.epoch(server.ntp()) in app.keep(answer["tuples"])
    # An old EBID of the same phone (its day's key still held) works too.
    server.clock.advance(1800)
    old = min(app.tuples)
    status, _ = await server.post("/status", app.ssu(0x02, server.ntp(), epoch=old))
    assert status == 200
    # A stranger: an EBID that decrypts to another epoch (400), one of nobody (430).
    from protocol.ebid import make_ebid
    from protocol.types import IdA

    now = app.epoch(server.ntp())
    stranger = App(app.server_public, "android", k_a=b"\x01" * 32, time_start=app.time_start)
    stranger.tuples = {now: (bytes(8), b"\x00")}
    status, answer = await server.post("/status", stranger.ssu(0x02, server.ntp()))
    assert (status, answer["error"]) == (400, "bad_ebid")
    nobody = make_ebid(server.running.service.key_of_epoch(now), now, IdA(b"\xff" * 5))
    stranger.tuples = {now: (nobody, b"\x00")}
    status, answer = await server.post("/status", stranger.ssu(0x02, server.ntp()))
    assert (status, answer["error"]) == (430, "unknown_registration")


async def test_clock_is_the_references(server: Server) -> None:
    async with server.session.get(server.url + "/clock") as r:
        assert r.status == 200
        answer = await r.json()
    conforms(answer, "Clock")
    assert answer["serviceStartDate"] == "2020-06-01"
    moment = datetime.fromisoformat(answer["time"].replace("Z", "+00:00"))
    assert moment == datetime.fromtimestamp(server.clock(), tz=UTC).replace(
        microsecond=moment.microsecond
    )
    assert answer["time"].endswith("Z") and len(answer["time"]) == 24  # ...T09:00:07.000Z
    assert answer["epoch"] == (server.ntp() - 3_799_958_400) // 900


async def test_captcha_answers_are_one_use_and_bounded(server: Server) -> None:
    app = App(server.running.service.keys.ecdh_private.public_key(), "android")
    _, made = await server.post("/captcha", {"type": "IMAGE", "locale": "en"})
    stored = await server.running.service.store.get_captcha(made["id"], server.ntp())
    assert stored is not None
    status, answer = await server.post("/register", app.register_body("WRONG1", made["id"]))
    assert (status, answer["error"]) == (401, "bad_captcha")
    status, answer = await server.post("/register", app.register_body(stored.answer, made["id"]))
    assert status == 201
    status, answer = await server.post("/register", app.register_body(stored.answer, made["id"]))
    assert (status, answer["error"]) == (410, "captcha_gone")
    async with server.session.get(f"{server.url}/captcha/{made['id']}/image") as r:
        assert r.status == 410
    # Three wrong answers void a captcha, even for the right one after them.
    _, made = await server.post("/captcha", {"type": "IMAGE", "locale": "en"})
    stored = await server.running.service.store.get_captcha(made["id"], server.ntp())
    assert stored is not None
    for _ in range(3):
        status, _ = await server.post("/register", app.register_body("NOPE", made["id"]))
        assert status == 401
    status, _ = await server.post("/register", app.register_body(stored.answer, made["id"]))
    assert status == 410
    # Expired after its lifetime.
    _, made = await server.post("/captcha", {"type": "IMAGE", "locale": "en"})
    stored = await server.running.service.store.get_captcha(made["id"], server.ntp())
    server.clock.advance(301)
    assert stored is not None
    status, _ = await server.post("/register", app.register_body(stored.answer, made["id"]))
    assert status == 410


def test_openapi_describes_every_route_and_only_those(settings: Settings) -> None:
    from server.api import routes

    app = create_app(settings, code_service(__import__("pathlib").Path(settings.data_dir)))
    mounted = {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    documented = {
        (method.upper(), path.replace("{captchaId}", "{captcha_id}"))
        for path, item in OPENAPI["paths"].items()
        for method in item
    }
    ours = {(m, p) for m, p in mounted if p.startswith((routes.API, "/.well-known", "/health"))}
    assert ours == {
        (m, p) for m, p in documented if p.startswith((routes.API, "/.well-known", "/health"))
    }
    assert not any(p.startswith("/api/v") and not p.startswith(routes.API) for _, p in mounted)
