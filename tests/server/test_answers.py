"""The status answer's JSON, put together from bytes (``routes.status_json``), is exactly what
serialising the answer as a dict wrote before: same members, order, separators and escapes."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import orjson
import pytest

from server.api.routes import status_json
from server.service import StatusAnswer

CONFIG: list[dict[str, Any]] = [
    {"name": "statusMinIntervalSeconds", "value": 7200},
    {"name": "helloToleranceSeconds", "value": 180},
    {"name": "clockToleranceSeconds", "value": 60},
    {"name": "riskThreshold", "value": 0.1},
]


def as_dict(answer: StatusAnswer) -> dict[str, Any]:
    """The answer as the status handler built it before (absent fields omitted)."""
    body: dict[str, Any] = {
        "riskLevel": answer.risk_level,
        "tuples": b"".join(answer.tuples).decode("ascii"),
        "config": CONFIG,
        "message": "at risk" if answer.at_risk else "no risk detected",
        "analyticsToken": answer.analytics_token,
    }
    if answer.last_contact_date is not None:
        body["lastContactDate"] = answer.last_contact_date
    if answer.last_risk_scoring_date is not None:
        body["lastRiskScoringDate"] = answer.last_risk_scoring_date
    if answer.declaration_token is not None:
        body["declarationToken"] = answer.declaration_token
    return body


BUNDLE = (base64.b64encode(secrets.token_bytes(12)), base64.b64encode(secrets.token_bytes(21_000)))
TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJyb2JlcnQtc2VydmVyIn0.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "answer",
    [
        StatusAnswer(0, BUNDLE, None, None, None, TOKEN),
        StatusAnswer(4, BUNDLE, "3900000000", "3900003600", TOKEN + "x", TOKEN),
        StatusAnswer(4, (b"",), "1", None, 'quote" back\\slash \u00e9 \n', "\u2028"),
    ],
    ids=["no-risk", "at-risk", "odd-strings"],
)
def test_status_json_is_the_dict_serialised(answer: StatusAnswer) -> None:
    expected = orjson.dumps(as_dict(answer))
    assert status_json(answer, orjson.dumps(CONFIG)) == expected
    assert orjson.loads(status_json(answer, orjson.dumps(CONFIG))) == as_dict(answer)
