"""How many bytes an encounter costs in the log, and what a town of N people x D days needs.

``python -m client_sim.memory --phones 2000 --days 2`` builds that town's encounters (no
server, no epidemic), measures the log's bytes per encounter (the table's columns and the
per-person index), and extrapolates linearly to bigger towns: encounters per person and day
do not depend on the town's size (places are sized per person). The int64/float64 layout the
log had before (9 columns of 8 bytes, and an index of two int64 arrays over both ends of each
row: 32 bytes) is printed beside it.
"""

from __future__ import annotations

import argparse
import resource

import numpy as np

from client_sim.world import SLOT, SLOTS_PER_DAY, EncounterLog, World
from protocol.epochs import EPOCHS_PER_DAY

WIDE_BYTES = 9 * 8 + 2 * 2 * 8
"""Bytes per encounter of the former layout: 9 int64/float64 columns, int64 order and rows."""
TUPLE_BYTES = 8 + 1 + 1
"""The phones' tuple table per phone and epoch (EBID, ECC, a flag), for the whole run."""


def measure(phones: int, days: int, seed: int = 1) -> tuple[int, int]:
    """(encounters, bytes of the log with its index) for a town of ``phones`` over ``days``."""
    world = World(phones, seed)
    log = EncounterLog()
    isolated = np.zeros(phones, bool)
    for day in range(days):
        plan = world.schedule(day, isolated)
        for slot in range(SLOTS_PER_DAY):
            start = (day * SLOTS_PER_DAY + slot) * SLOT
            log.add_slot(world.encounters(day, slot, plan[slot], start))
        log.end_day(phones)
    return sum(len(t) for t in log.days), log.nbytes


def main(argv: list[str] | None = None) -> None:
    """Measure at a small size and print the extrapolations."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--phones", type=int, default=2000)
    p.add_argument("--days", type=int, default=2)
    p.add_argument("--to", type=int, nargs="+", default=[100_000, 250_000])
    p.add_argument("--to-days", type=int, default=14)
    args = p.parse_args(argv)
    count, size = measure(args.phones, args.days)
    per = size / count
    rate = count / args.phones / args.days
    print(f"{args.phones} people x {args.days} days: {count:,} encounters, {size:,} bytes")
    print(f"{per:.1f} bytes per encounter now; {WIDE_BYTES} with int64/float64 columns")
    print(f"{rate:.1f} encounters per person and day")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory of this process {peak:,.0f} MB")
    for n in args.to:
        encounters = rate * n * args.to_days
        tuples = n * (args.to_days + 6) * EPOCHS_PER_DAY * TUPLE_BYTES
        print(
            f"{n:,} people x {args.to_days} days: {encounters / 1e6:,.0f} M encounters, "
            f"log {encounters * per / 2**30:.1f} GiB (was {encounters * WIDE_BYTES / 2**30:.1f}),"
            f" tuple table {tuples / 2**30:.1f} GiB"
        )


if __name__ == "__main__":
    main()
