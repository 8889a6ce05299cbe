"""Time to the first HELLO between our client and each simulated phone kind, on bumble's
virtual link: ``python -m ble.bench_first_hello [--runs N]``.

For each kind (``ble.simulated.KINDS``) and each run: a fresh virtual link with our client (a
``BleNode``: bumble advertiser in peripheral mode, bumble scanner) and one simulated phone, started
together. Printed per kind, in milliseconds from the start (median, min, max over the runs):

- ``payload``: the first of its HELLOs reaching our collector (the advertisement, the read or the
  write: what the radio path costs);
- ``record``: the first record handed to our sink, after the collector's one-second merge of
  sightings of the same HELLO (records leave when their NTP second is over, flushed every 0.25 s);
- ``they heard us``: the first of our HELLOs recorded by the simulated phone.

The virtual link delivers an advertisement at once; on air add up to one advertising interval and
the scanner's duty cycle. Figures, not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from dataclasses import dataclass

from ble.advertiser.bumble import BumbleAdvertiser
from ble.collector import HeardHello, RecordListener, Sighting
from ble.node import BleNode
from ble.scanner.bumble import BumbleHelloScanner
from ble.simulated import KINDS, SimulatedPhone, virtual_devices
from protocol.ebid import make_ebid, make_ecc
from protocol.epochs import REFERENCE_TIME_START, epoch_of, ntp_from_unix
from protocol.hello import build_hello
from protocol.types import EbidKey, FederationKey, MacKey, id_a

COUNTRY_FR = 0x21


@dataclass
class KeyedSource:
    """A HelloSource from real keys, like a registered phone's (one EBID per epoch)."""

    k_a: MacKey
    k_s: EbidKey
    k_g: FederationKey
    owner: bytes

    def current_hello(self, now_ntp: int) -> bytes | None:
        ebid = make_ebid(self.k_s, epoch_of(now_ntp, REFERENCE_TIME_START), id_a(self.owner))
        ecc = make_ecc(self.k_g, ebid, COUNTRY_FR)
        return build_hello(self.k_a, ecc, ebid, now_ntp).to_bytes()


class _Sink:
    def record_hello(self, hello: bytes, received_ntp: int, rssi_calibrated: int) -> None:
        """The bench only times records (through the listener)."""


class _FirstRecord(RecordListener):
    def __init__(self) -> None:
        self.at: float | None = None

    def on_record(self, record: HeardHello) -> None:
        if self.at is None:
            self.at = asyncio.get_running_loop().time()


def wall_clock() -> int:
    return ntp_from_unix(time.time())


async def one_run(kind: str, rng: random.Random) -> tuple[float, float, float]:
    """(payload, record, they heard us) in seconds from the start of one exchange."""
    k_s, k_g = EbidKey(rng.randbytes(24)), FederationKey(rng.randbytes(32))
    ours = KeyedSource(MacKey(rng.randbytes(32)), k_s, k_g, rng.randbytes(5))
    theirs = KeyedSource(MacKey(rng.randbytes(32)), k_s, k_g, rng.randbytes(5))
    async with virtual_devices(2) as (mine, other):
        first = _FirstRecord()
        node = BleNode(
            ours,
            _Sink(),
            wall_clock,
            advertiser=BumbleAdvertiser(mine, kind="peripheral", interval_ms=100.0),
            scanner=BumbleHelloScanner(mine),
            refresh_interval=0.5,
            listeners=(first,),
            report=lambda _line: None,
        )
        loop = asyncio.get_running_loop()
        payload_at: list[float] = []
        feed = node.collector.feed

        def timed_feed(sighting: Sighting) -> None:
            if sighting.payload is not None and not payload_at:
                payload_at.append(loop.time())
            feed(sighting)

        node.collector.feed = timed_feed  # type: ignore[method-assign]
        assert node.advertiser is not None
        node.advertiser.on_sighting = timed_feed
        peer = SimulatedPhone(kind, other, theirs, wall_clock)
        started = loop.time()
        await peer.start()
        await node.start()
        while loop.time() < started + 20 and (first.at is None or not peer.heard):
            await asyncio.sleep(0.005)
        await node.stop()
        await peer.stop()
    if first.at is None or not payload_at or not peer.heard:
        raise RuntimeError(f"{kind}: no exchange within 20 s")
    return payload_at[0] - started, first.at - started, peer.heard[0].at - started


def summary(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"{statistics.median(ms):7.1f} ({min(ms):.1f}-{max(ms):.1f})"


async def bench(runs: int) -> None:
    rng = random.Random(2020)
    print(f"time to first HELLO on bumble's virtual link, ms: median (min-max) of {runs} runs")
    print(f"{'peer kind':<18} {'payload':>22} {'record':>22} {'they heard us':>22}")
    for kind in KINDS:
        results = [await one_run(kind, rng) for _ in range(runs)]
        columns = [summary([r[i] for r in results]) for i in range(3)]
        print(f"{kind:<18} {columns[0]:>22} {columns[1]:>22} {columns[2]:>22}")


def main() -> None:
    """Parse ``--runs`` and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="exchanges per kind (default 5)")
    args = parser.parse_args()
    asyncio.run(bench(args.runs))


if __name__ == "__main__":
    main()
