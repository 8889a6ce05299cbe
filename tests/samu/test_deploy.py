"""The board's deployment: a systemd unit, a compose service, an nginx route whose live
feed is not buffered (the whole files are checked by their tools in tests/cluster)."""

from __future__ import annotations

from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_samu_is_deployed() -> None:
    unit = (DEPLOY / "systemd" / "robert-samu.service").read_text()
    assert "ExecStart=/opt/robert/.venv/bin/robert samu serve" in unit
    assert "Environment=SAMU_PORT=8087" in unit and "ReadWritePaths=/var/lib/robert-samu" in unit
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    samu = compose["services"]["samu"]
    assert samu["environment"]["SAMU_BEDS_URL"] == "http://beds:8084"
    assert "8087/samu/health" in samu["healthcheck"]["test"][-1]
    nginx = (DEPLOY / "nginx" / "robert.conf").read_text()
    assert "server 127.0.0.1:8087;" in nginx.split("upstream robert_samu", 1)[1]
    stream = nginx.split("location ~ ^/samu/api/v1/events/[0-9]+/stream$ {", 1)[1]
    stream = stream.split("}", 1)[0]
    assert "proxy_buffering off;" in stream and "proxy_pass http://robert_samu;" in stream
    metrics = nginx.split("location = /samu/metrics {", 1)[1].split("}", 1)[0]
    assert "deny all;" in metrics
