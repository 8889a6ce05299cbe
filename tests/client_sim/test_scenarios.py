"""Through the real server in-process: the issue's two-phone scenarios and a reproducible run."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import aiohttp
import numpy as np

from client_sim.cli import TIMING_FIELDS
from client_sim.clock import VirtualClock
from client_sim.epidemic import EpidemicConfig
from client_sim.phones import SimPhone, TupleTable
from client_sim.radio import RadioConfig, hear, pair_key
from client_sim.sim import DEFAULT_START, EmbeddedBackend, SimConfig, simulate
from phone.client import service_start_ntp
from protocol.epochs import EPOCHS_PER_DAY, epoch_of, ntp_from_datetime, unix_from_ntp

START = ntp_from_datetime(DEFAULT_START) + 10 * 3600
RADIO = RadioConfig()


def meet(a: SimPhone, b: SimPhone, distance: float, minutes: int, key: int) -> None:
    """Both directions of one encounter through the radio model, fed to the phones."""
    models = np.zeros(4, dtype=np.int64)
    for direction, (sender, receiver) in enumerate(((a, b), (b, a))):
        rx = hear(
            np.array([sender.index]),
            np.array([receiver.index]),
            np.array([sender.now_ntp()]),
            np.array([minutes * 60]),
            np.array([distance]),
            np.zeros(1),
            pair_key(1, np.array([key]), direction),
            models,
            RADIO,
        )
        for sent, collected, rssi in zip(rx.time_sent, rx.time_collected, rx.rssi, strict=True):
            hello = sender.current_hello(int(sent))
            assert hello is not None
            receiver.record_hello(hello, int(collected), int(rssi))


async def test_close_contact_is_warned_far_short_one_is_not(tmp_path: Path) -> None:
    clock = VirtualClock(unix_from_ntp(START))
    backend = EmbeddedBackend(SimConfig(out=tmp_path), clock)
    await backend.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{backend.url}/api/v6/clock") as answer:
                time_start = service_start_ntp((await answer.json())["serviceStartDate"])
            table = TupleTable(4, epoch_of(START, time_start) - 1, 6 * EPOCHS_PER_DAY)
            alice, bob, carol, dave = (
                SimPhone(i, table, backend.url, clock, random.Random(i).randbytes, session)
                for i in range(4)
            )
            for phone in (alice, bob, carol, dave):
                await phone.register()
            meet(alice, bob, distance=0.5, minutes=20, key=1)
            meet(carol, dave, distance=4.0, minutes=5, key=2)
            clock.advance(1500)
            for reporter in (alice, carol):
                await reporter.report(await backend.issue_code("2026-03-02"))
            assert await backend.drain() == 2
            clock.advance(3600)
            assert (await bob.check_status()).at_risk
            assert not (await dave.check_status()).at_risk
    finally:
        await backend.close()


def small(out: Path) -> SimConfig:
    return SimConfig(
        phones=150,
        days=3,
        seed=11,
        out=out,
        quiet=True,
        epidemic=replace(EpidemicConfig(), initial_infected=0.1, test_delay_days=(1.0, 2.0)),
    )


async def test_same_seed_same_report(tmp_path: Path) -> None:
    first = await simulate(small(tmp_path / "a"))
    second = await simulate(small(tmp_path / "b"))
    for report in (first, second):
        for name in TIMING_FIELDS:
            report.pop(name)
    assert first["reports"] > 0 and first["registrations"] == 150
    assert first["hellos_exchanged"] > 0 and first["status_requests"] >= 150 * 3
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert 0.0 <= first["recall"] <= 1.0
    # Dummy reports, as the apps send them, reach the same endpoint as the real ones.
    dummies = first["dummy_reports"]
    assert dummies["sent"] > 0 and dummies["errors"] == 0 and dummies["hellos"] > 0
    assert first["server_requests"]["/api/v6/report"] == first["reports"] + dummies["sent"]
    assert first["epidemic_with_app"]["infected"] == first["infected_with_app"]


async def test_server_in_a_child_process_gives_the_same_report(tmp_path: Path) -> None:
    """--server-process: the same app in a child process, driven by the same virtual clock."""
    here = await simulate(small(tmp_path / "here"))
    child = await simulate(replace(small(tmp_path / "child"), server_process=True))
    for report in (here, child):
        for name in TIMING_FIELDS:
            report.pop(name)
    assert child["reports"] > 0 and child["status_errors"] == 0
    assert json.dumps(here, sort_keys=True) == json.dumps(child, sort_keys=True)
