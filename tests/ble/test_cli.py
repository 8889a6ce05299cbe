"""The CLI: help texts, and ``ble run`` / ``ble report`` against the assumed Phone API.

``phone.client`` is replaced by a fake with the API the CLI is written against, and the
radio by two virtual bumble controllers (our phone and a peer), so the whole command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ble import cli
from ble.advertiser.bumble import BumbleAdvertiser
from ble.node import BleNode
from ble.scanner.bumble import BumbleHelloScanner
from tests.ble.conftest import FakePhone, RecordingSink, virtual_devices


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="robert")
    cli.add_subcommands(top.add_subparsers(dest="command", required=True))
    return top


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["ble", "--help"], ["scan", "run", "report"]),
        (["ble", "scan", "--help"], ["EBID", "calibrated", "--scanner", "--transport", "passive"]),
        (["ble", "run", "--help"], ["--server", "--state", "--advertiser", "--refresh", "epoch"]),
        (["ble", "report", "--help"], ["--code", "submission code"]),
    ],
)
def test_help(argv: list[str], words: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(argv)
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for word in words:
        assert word in out


def test_kind_help_says_both_advertisers_serve_gatt(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["ble", "run", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    start = out.index("--kind {broadcast,peripheral} peripheral:")  # the option, not the usage
    kind = out[start : out.index("--refresh REFRESH", start)]
    assert "serve the HELLO characteristic over GATT" in kind
    assert "BlueZ" in kind and "bumble" in kind
    assert "(bumble) serve" not in kind  # the BlueZ advertiser serves it too


class FakeStatus:
    at_risk = False
    risk_level = 0


def fake_phone_module(keys: FakePhone, log: dict[str, Any]) -> types.ModuleType:
    """A stand-in for phone.client with the API ble/cli.py assumes."""

    class Phone:
        def __init__(self) -> None:
            self.heard = RecordingSink()

        @classmethod
        async def load_or_register(cls, state_path: Path, server_url: str, clock: Any) -> Phone:
            log["loaded"] = (state_path, server_url, clock())
            log["phone"] = phone = cls()
            return phone

        def current_hello(self, now_ntp: int) -> bytes | None:
            return keys.current_hello(now_ntp)

        def record_hello(self, hello: bytes, received_ntp: int, rssi_calibrated: int) -> None:
            self.heard.record_hello(hello, received_ntp, rssi_calibrated)

        async def check_status(self) -> FakeStatus:
            log["status"] = log.get("status", 0) + 1
            return FakeStatus()

        async def report(self, code: str) -> None:
            log["reported"] = code

        async def close(self) -> None:
            log["closed"] = True

    module = types.ModuleType("phone.client")
    module.Phone = Phone  # type: ignore[attr-defined]
    return module


def test_run_phone_end_to_end(
    make_phone: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any
) -> None:
    ours, peer = make_phone(), make_phone()
    log: dict[str, Any] = {}
    monkeypatch.setitem(sys.modules, "phone.client", fake_phone_module(ours, log))

    @contextlib.asynccontextmanager
    async def virtual_radio(args: argparse.Namespace) -> AsyncIterator[Any]:
        async with virtual_devices(2) as (mine, theirs):
            other = BleNode(
                peer,
                RecordingSink(),
                cli.system_clock,
                advertiser=BumbleAdvertiser(theirs, kind="broadcast"),
                scanner=BumbleHelloScanner(theirs),
            )
            async with other:
                yield BumbleAdvertiser(mine, kind=args.kind), BumbleHelloScanner(mine)

    monkeypatch.setattr(cli, "open_radio", virtual_radio)
    args = parser().parse_args(
        [
            "ble",
            "run",
            "--server",
            "http://127.0.0.1:9",
            "--state",
            str(tmp_path / "p"),
            "--advertiser",
            "bumble",
            "--scanner",
            "bumble",
            "--duration",
            "2.5",
            "--status-every",
            "0.5",
            "--refresh",
            "0.5",
        ]
    )
    assert args.func(args) == 0
    out = capsys.readouterr().out
    peer_ebids = {peer.ebid_at(t) for t in peer.asked}
    assert any(ebid.hex() in out for ebid in peer_ebids)
    assert "status: at_risk=False risk_level=0" in out
    assert log["closed"] and log["status"] >= 1
    assert log["loaded"][:2] == (tmp_path / "p", "http://127.0.0.1:9")
    heard = log["phone"].heard.records
    assert heard and all(hello[1:9] in peer_ebids for hello, _, _ in heard)


def test_report(make_phone: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    log: dict[str, Any] = {}
    monkeypatch.setitem(sys.modules, "phone.client", fake_phone_module(make_phone(), log))
    args = parser().parse_args(["ble", "report", "--code", "ABC234", "--state", str(tmp_path)])
    assert args.func(args) == 0
    assert log["reported"] == "ABC234" and log["closed"]
