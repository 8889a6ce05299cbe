"""Malformed requests at every endpoint: always a 4xx with a JSON error body, never a 5xx.

Hypothesis drives a synchronous HTTP client against the real server, run on its own event loop
in a thread (hypothesis does not drive coroutines itself).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.settings import Settings
from tests.server.conftest import served_in_a_thread

POST_ENDPOINTS = {
    "/api/v6/captcha": ["type", "locale"],
    "/api/v6/register": ["captcha", "captchaId", "clientPublicECDHKey", "pushInfo"],
    "/api/v6/status": ["ebid", "epochId", "time", "mac", "pushInfo"],
    "/api/v6/report": ["token", "contacts", "contactsAsBinary"],
    "/api/v6/unregister": ["ebid", "epochId", "time", "mac", "pushToken"],
    "/api/v6/deleteExposureHistory": ["ebid", "epochId", "time", "mac"],
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    data = Path(tmp_path_factory.mktemp("fuzz"))
    app_settings = Settings(
        data_dir=str(data), captcha="off", status_min_interval=0, embedded_worker=False
    )
    with served_in_a_thread(app_settings, data) as port:
        yield "127.0.0.1", port


def post(address: tuple[str, int], path: str, body: bytes) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*address, timeout=20)
    try:
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def assert_clean_refusal(status: int, raw: bytes) -> None:
    assert status < 500, raw
    if status >= 400:
        body = json.loads(raw)
        assert body["success"] is False and isinstance(body["error"], str)


json_leaf = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=50)
    | st.sampled_from(
        [
            "",
            "AAAAAAAAAAA=",
            "AAAAAA==",
            "A" * 44,
            "=====",
            "ééé",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ]
    )
)
json_values = st.recursive(
    json_leaf,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
    max_leaves=12,
)


@st.composite
def request_bodies(draw: st.DrawFn) -> tuple[str, bytes]:
    path = draw(st.sampled_from(sorted(POST_ENDPOINTS)))
    fields = POST_ENDPOINTS[path]
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return path, draw(st.binary(max_size=300))
    if kind == 1:
        return path, json.dumps(draw(json_values)).encode()
    body = draw(st.dictionaries(st.sampled_from([*fields, "extra"]), json_values, max_size=6))
    if kind == 3 and path == "/api/v6/report":
        body["contacts"] = draw(
            st.lists(
                st.dictionaries(st.sampled_from(["ebid", "ecc", "ids"]), json_values, max_size=3),
                max_size=3,
            )
        )
    return path, json.dumps(body).encode()


@settings(max_examples=300)
@given(request_bodies())
def test_no_5xx_on_malformed_posts(server: tuple[str, int], request: tuple[str, bytes]) -> None:
    path, body = request
    assert_clean_refusal(*post(server, path, body))


def test_huge_body_is_413(server: tuple[str, int]) -> None:
    status, raw = post(server, "/api/v6/status", b"{" + b" " * 100_000 + b"}")
    assert status == 413
    assert json.loads(raw)["error"] == "too_large"


@pytest.mark.parametrize(
    ("method", "path", "status", "allow"),
    [
        ("GET", "/nope", 404, None),
        ("POST", "/api/v6/nope/deeper", 404, None),
        ("GET", "/a%0Ab", 404, None),  # an encoded newline: '.' would not match it
        ("GET", "/api/v6/status?x=1", 405, "POST"),
        ("DELETE", "/health", 405, "GET,HEAD"),
    ],
)
def test_unknown_path_and_method_are_json(
    server: tuple[str, int], method: str, path: str, status: int, allow: str | None
) -> None:
    connection = http.client.HTTPConnection(*server, timeout=10)
    connection.request(method, path)
    response = connection.getresponse()
    assert response.status == status
    assert response.getheader("Content-Type") == "application/json"
    assert response.getheader("Allow") == allow
    assert json.loads(response.read())["success"] is False
    connection.close()


# --- what schemathesis found against server/openapi.json (docs/server.md: Fuzzing) ----------
WELL_FORMED_AUTH = {
    "ebid": "AAAAAAAAAAA=",
    "time": "AAAAAA==",
    "mac": "A" * 43 + "=",
}


@pytest.mark.parametrize("path", ["/status", "/unregister", "/deleteExposureHistory"])
@pytest.mark.parametrize("epoch", [4_294_967_295, 4_294_967_294, 2**28])
def test_an_epoch_past_the_calendar_is_430_not_500(
    server: tuple[str, int], path: str, epoch: int
) -> None:
    """An epochId whose day is past the year 9999 (date arithmetic overflowed: a 500) has no
    key, like any epoch too far ahead."""
    body = json.dumps({**WELL_FORMED_AUTH, "epochId": epoch}).encode()
    status, raw = post(server, "/api/v6" + path, body)
    assert (status, json.loads(raw)["error"]) == (430, "key_unavailable"), raw


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"type": "POW", "locale": {}}, 400),
        ({"type": "POW", "locale": ["fr"]}, 400),
        ({"type": "pow"}, 201),  # upper or lower case, nothing in between
        ({"type": "Pow"}, 400),
        ({"type": "Image", "locale": "fr"}, 400),
        ({"type": "POW", "locale": 5}, 201),  # a scalar the reference's Jackson takes
        ({"type": "POW", "locale": None}, 201),
        ({"type": "IMAGE", "locale": "fr-FR"}, 201),
    ],
)
def test_captcha_request_as_the_document_says(
    server: tuple[str, int], body: dict[str, object], status: int
) -> None:
    got, raw = post(server, "/api/v6/captcha", json.dumps(body).encode())
    assert got == status, raw


def _spki() -> str:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    der = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return base64.b64encode(der).decode()


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({}, 201),
        ({"captchaId": "not an id"}, 400),  # even with the gate off: the document's pattern
        ({"captcha": "x" * 65}, 400),
        ({"pushInfo": {"token": "t", "locale": "fr_FR", "timezone": "Europe/Paris"}}, 201),
        ({"pushInfo": None}, 201),
        ({"pushInfo": {"token": "é", "locale": "fr_FR", "timezone": "Europe/Paris"}}, 400),
    ],
)
def test_register_shapes_checked_with_the_gate_off(
    server: tuple[str, int], changes: dict[str, object], status: int
) -> None:
    body = {"captcha": "", "captchaId": "0" * 32, "clientPublicECDHKey": _spki(), **changes}
    got, raw = post(server, "/api/v6/register", json.dumps(body).encode())
    assert got == status, raw


@pytest.mark.parametrize(
    ("token", "status", "error"),
    [
        ("000000", 200, None),
        (" 000000\n", 400, "bad_token"),  # a dummy is its exact token (spaces: a real code)
        ("00000000-0000-0000-0000-000000000000", 200, None),
        ("abcdef", 401, "code_unknown"),  # a short code, any case
        ("ABCDEſ", 400, "bad_token"),  # "ſ".upper() == "S": not ASCII, not a code
        ("ABCDE", 400, "bad_token"),
    ],
)
def test_report_tokens_as_the_document_says(
    server: tuple[str, int], token: str, status: int, error: str | None
) -> None:
    got, raw = post(server, "/api/v6/report", json.dumps({"token": token, "contacts": []}).encode())
    assert got == status, raw
    if error is not None:
        assert json.loads(raw)["error"] == error


def test_integral_numbers_written_as_floats_are_integers(server: tuple[str, int]) -> None:
    """JSON Schema's ``integer`` takes 678.0 (the reference's Jackson too): a HELLO's fields
    and epochId written so are read as the integers they are, not refused."""
    hello = {"timeCollectedOnDevice": 263066671.0, "timeFromHelloMessage": 678.0}
    hello |= {"mac": "DumU372=", "rssiCalibrated": -61.0, "rssiRaw": -70.0}
    contact = {"ebid": "+6hz80At0Lw=", "ecc": "Zy==", "ids": [hello]}
    body = json.dumps({"token": "000000", "contacts": [contact]}).encode()
    assert post(server, "/api/v6/report", body)[0] == 200
    hello["rssiCalibrated"] = -61.5
    body = json.dumps({"token": "000000", "contacts": [contact]}).encode()
    status, raw = post(server, "/api/v6/report", body)
    assert (status, json.loads(raw)["error"]) == (400, "bad_format")
    body = json.dumps({**WELL_FORMED_AUTH, "epochId": 4_294_967_295.0}).encode()
    status, raw = post(server, "/api/v6/status", body)
    assert (status, json.loads(raw)["error"]) == (430, "key_unavailable"), raw
