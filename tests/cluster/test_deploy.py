"""The deployment files parse and pass their own tools' checks (fast; not marked cluster).

Tools: docker-compose (apt docker-compose: `config` needs no engine), kubernetes-validate
(pip: bundles the Kubernetes JSON schemas, works offline), nginx (apt nginx-light: `nginx -t`
with a throw-away self-signed certificate), systemd-analyze (`verify`). Each test skips with
the reason when its tool is missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.tls import self_signed

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def _tool(name: str) -> str:
    path = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else "")
    if not path:
        pytest.skip(f"{name} not installed")
    return path


def test_compose_config() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed")
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"api", "worker", "redis", "prometheus", "codes", "citizens"} <= set(services)
    # Beds and drugs, each its own process; drugs reads patients in critical care from beds.
    assert {"beds", "drugs"} <= set(services)
    assert services["drugs"]["environment"]["DRUGS_BEDS_URL"] == "http://beds:8084"
    assert "beds" in services["drugs"]["depends_on"]
    for name, port in (("beds", 8084), ("drugs", 8085)):
        assert f"http://127.0.0.1:{port}/{name}/health" in " ".join(
            services[name]["healthcheck"]["test"]
        )
        assert f"{name}-data:/data" in services[name]["volumes"]
    assert "sivic" in services
    # SI-DEP: HTTP and MLLP, its data volume, codes from the code service.
    sidep = services["sidep"]
    assert "http://127.0.0.1:8082/sidep/health" in " ".join(sidep["healthcheck"]["test"])
    assert "sidep-data:/data" in sidep["volumes"] and "sidep-data" in compose["volumes"]
    assert "127.0.0.1:8082:8082" in sidep["ports"]
    assert any(p.endswith(":2575:2575") for p in sidep["ports"])
    assert sidep["environment"]["SIDEP_CODES_URL"] == "http://codes:8081"
    assert "codes" in sidep["depends_on"]
    redis_cmd = " ".join(compose["services"]["redis"]["command"])
    assert "--appendonly yes" in redis_cmd and "--appendfsync everysec" in redis_cmd
    assert "/metrics" in (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    binary = shutil.which("docker-compose")
    if binary:
        command = [binary]
    else:
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if shutil.which("docker") is None or probe.returncode:
            pytest.skip("neither docker-compose nor the docker compose plugin is installed")
        command = ["docker", "compose"]
    run = subprocess.run(
        [*command, "-f", str(DEPLOY / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_kubernetes_manifests() -> None:
    yaml = pytest.importorskip("yaml", reason="PyYAML not installed")
    validate = pytest.importorskip("kubernetes_validate", reason="kubernetes-validate missing")
    docs = [d for d in yaml.safe_load_all((DEPLOY / "k8s" / "robert.yaml").read_text()) if d]
    for doc in docs:
        validate.validate(doc, "1.30.0", strict=True)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {("Deployment", "robert-api"), ("Deployment", "robert-worker")} <= kinds
    assert {("Service", "robert-api"), ("HorizontalPodAutoscaler", "robert-api")} <= kinds
    assert ("Secret", "robert-keys") in kinds
    api = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "robert-api"
    )
    robert = ("robert-api", "robert-worker")
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        if deployment["metadata"]["name"] not in robert:
            continue  # the other services hold no ROBERT key
        pod = deployment["spec"]["template"]["spec"]
        keys = next(v for v in pod["volumes"] if v["name"] == "keys")
        assert keys["secret"]["secretName"] == "robert-keys"
        mount = next(m for c in pod["containers"] for m in c["volumeMounts"] if m["name"] == "keys")
        assert mount["readOnly"] is True
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    # Liveness does not ask the store: a busy Redis must not get healthy pods killed.
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert {"name": "ROBERT_TRUSTED_PROXIES", "value": "10.0.0.0/8"} in container["env"]
    # The code service runs alone; the API reaches it over HTTP with its key.
    assert {("Deployment", "robert-codes"), ("Service", "robert-codes")} <= kinds
    store = next(
        d for d in docs if d["kind"] == "Secret" and d["metadata"]["name"] == "robert-store"
    )
    assert store["stringData"]["ROBERT_CODES_URL"] == "http://robert-codes"
    # Beds and drugs, each its own Deployment and Service; drugs reads beds through its Service.
    for name in ("beds", "drugs"):
        assert {("Deployment", f"robert-{name}"), ("Service", f"robert-{name}")} <= kinds
        assert ("Secret", f"robert-{name}") in kinds
    drugs = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "robert-drugs"
    )
    [drugs_container] = drugs["spec"]["template"]["spec"]["containers"]
    assert {"name": "DRUGS_BEDS_URL", "value": "http://robert-beds"} in drugs_container["env"]
    assert drugs_container["readinessProbe"]["httpGet"]["path"] == "/drugs/health"
    # SI-DEP: HTTP and MLLP ports, its pseudonym key from its Secret, read-only.
    assert {("Deployment", "robert-sidep"), ("Service", "robert-sidep")} <= kinds
    sidep = next(
        d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "robert-sidep"
    )
    [sidep_container] = sidep["spec"]["template"]["spec"]["containers"]
    assert {p["containerPort"] for p in sidep_container["ports"]} == {8082, 2575}
    assert sidep_container["readinessProbe"]["httpGet"]["path"] == "/sidep/health"
    keyfile = {"name": "SIDEP_PSEUDONYM_KEY_FILE", "value": "/keys/pseudonym.key"}
    assert keyfile in sidep_container["env"]
    assert {"name": "pseudonym", "mountPath": "/keys", "readOnly": True} in sidep_container[
        "volumeMounts"
    ]


def test_nginx_config(tmp_path: Path) -> None:
    nginx = _tool("nginx")
    text = (DEPLOY / "nginx" / "robert.conf").read_text()
    # What the brief asks of it, checked on the text as well as by nginx.
    assert "client_max_body_size 16k;" in text and "client_max_body_size 8m;" in text
    report = text.split("location = /api/v6/report", 1)[1].split("}", 1)[0]
    assert "access_log off;" in report
    log_format = next(line for line in text.splitlines() if line.startswith("log_format"))
    assert "$remote_addr" not in log_format and "$http_x_forwarded_for" not in log_format
    for name, port in (("beds", 8084), ("drugs", 8085)):
        assert f"server 127.0.0.1:{port};" in text.split(f"upstream robert_{name}", 1)[1]
        route = text.split(f"location /{name}/ {{", 1)[1].split("}", 1)[0]
        assert f"proxy_pass http://robert_{name};" in route
        metrics = text.split(f"location = /{name}/metrics {{", 1)[1].split("}", 1)[0]
        assert "deny all;" in metrics
    # The client's address reaches the server (its per-client limits), replaced not appended.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in text
    assert 'X-Forwarded-For ""' not in text
    # SI-DEP: intake bodies up to the service's file limit (32 MiB), metrics not from outside;
    # MLLP (TCP) has no http route.
    assert "server 127.0.0.1:8082;" in text.split("upstream robert_sidep", 1)[1]
    sidep = text.split("location /sidep/ {", 1)[1].split("}", 1)[0]
    assert "proxy_pass http://robert_sidep;" in sidep and "client_max_body_size 33m;" in sidep
    assert "deny all;" in text.split("location = /sidep/metrics {", 1)[1].split("}", 1)[0]
    assert "2575;" not in text
    cert, key = self_signed(tmp_path, "robert.example.org")
    site = (
        text.replace("/etc/robert/tls/fullchain.pem", str(cert))
        .replace("/etc/robert/tls/privkey.pem", str(key))
        .replace("/var/log/nginx/", f"{tmp_path}/")
    )
    (tmp_path / "robert.conf").write_text(site)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/error.log;\n"
        f"events {{}}\nhttp {{\n  access_log {tmp_path}/access.log;\n"
        f"  include {tmp_path}/robert.conf;\n}}\n"
    )
    run = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 0, run.stderr


def test_systemd_units(tmp_path: Path) -> None:
    units = {p.name: p.read_text() for p in (DEPLOY / "systemd").glob("*.service")}
    # One unit per service (each runs alone in production), the ROBERT worker besides.
    assert {"robert-api.service", "robert-worker@.service", "robert-codes.service",
            "robert-citizens.service", "robert-beds.service",
            "robert-drugs.service", "robert-sivic.service",
            "robert-sidep.service"} <= set(units)  # fmt: skip
    assert "ExecStart=/opt/robert/.venv/bin/robert sidep serve" in units["robert-sidep.service"]
    assert "ExecStart=/opt/robert/.venv/bin/robert beds serve" in units["robert-beds.service"]
    assert "ExecStart=/opt/robert/.venv/bin/robert drugs serve" in units["robert-drugs.service"]
    assert "DRUGS_BEDS_URL=http://127.0.0.1:8084" in units["robert-drugs.service"]
    for name, text in units.items():
        for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "User=robert"):
            assert option in text, (name, option)
        assert "ReadWritePaths=/var/lib/robert" in text, name  # its own state directory only
    analyze = _tool("systemd-analyze")
    robert = ROOT / ".venv" / "bin" / "robert"
    if not robert.exists():
        pytest.skip("no .venv/bin/robert to stand in for /opt/robert/.venv/bin/robert")
    paths = []
    for name, text in units.items():
        instance = name.replace("@.", "@1.")
        path = tmp_path / instance
        path.write_text(text.replace("/opt/robert/.venv/bin/robert", str(robert)))
        paths.append(str(path))
    run = subprocess.run(
        [analyze, "verify", *paths], capture_output=True, text=True, timeout=60, check=False
    )
    assert run.returncode == 0, run.stderr + run.stdout
