"""Redis memory per registration: ``python -m loadtest.memory [--phones N] [--redis URL]``.

Seeds N registrations into an empty Redis database (our own throw-away server unless
``--redis``, whose database must be empty) and prints the ``used_memory`` delta of INFO memory
divided by N, and the mean ``MEMORY USAGE`` of a sample of registration keys.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import tempfile
from pathlib import Path

import redis

from loadtest import services
from loadtest.seed import seed
from loadtest.seedfile import SeedFile
from server.settings import Settings
from server.store.redis import registration_key

SAMPLE = 1000


def measure(url: str, phones: int, work: Path) -> tuple[float, float]:
    """(used_memory delta per registration, mean MEMORY USAGE of sampled keys), in bytes."""
    client = redis.Redis.from_url(url)
    if client.dbsize():
        raise SystemExit(f"{url} is not empty: memory needs an empty database")
    before = int(client.info("memory")["used_memory"])
    settings = Settings(data_dir=str(work), store=url)
    result = seed(settings, phones, 0, work / "seed.bin")
    after = int(client.info("memory")["used_memory"])
    seeded = SeedFile.read(work / "seed.bin")
    picks = random.sample(range(seeded.phones), min(SAMPLE, seeded.phones))
    usage = [client.memory_usage(registration_key(seeded.phone(i)[0])) or 0 for i in picks]
    client.close()
    return (after - before) / result.phones, sum(usage) / len(usage)


def main() -> None:
    """Print bytes per registration."""
    p = argparse.ArgumentParser(prog="python -m loadtest.memory", description=__doc__)
    p.add_argument("--phones", type=int, default=1_000_000)
    p.add_argument("--redis", help="an empty Redis database instead of our own server")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="robert-memory-") as tmp, contextlib.ExitStack() as st:
        work = Path(tmp)
        url = args.redis or st.enter_context(services.own_redis(work))
        per_reg, usage = measure(url, args.phones, work)
    print(f"phones={args.phones} used_memory/registration={per_reg:.1f} B")
    print(f"MEMORY USAGE mean of {SAMPLE} keys={usage:.1f} B")


if __name__ == "__main__":
    main()
