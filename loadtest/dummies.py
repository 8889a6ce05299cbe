"""Are dummy reports told apart from real ones? ``python -m loadtest.dummies [--reports N]``.

What an observer outside TLS sees of a report is its size and its timing. This starts a server
as the bench does (its own Redis, ``robert serve`` and a ``robert worker``), seeds phones and
codes, warms up with real reports, then sends N real reports (each with a code of its own and
two real HELLOs from each of three seeded phones) and N dummy reports of exactly the same
request size, in a random order, one at a time (after 50 of each, so that the server is in its
steady state), and compares what came back:

* answer sizes and statuses: the sets must be equal;
* answer times (send to last byte, on loopback): a two-sample Kolmogorov-Smirnov test and a
  Mann-Whitney U test (scipy). A p-value above 0.05 means no timing difference is found at the
  5 % level.

The last line is ``dummies: KS p=... MWU p=...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
from scipy import stats

from loadtest import services
from loadtest.messages import JSON_HEADERS, Messages
from loadtest.seed import seed
from loadtest.seedfile import SeedFile
from phone.client import API
from protocol.codes import dummy_code
from server.settings import Settings

WARM_UP = 50


def dummy_of(real: bytes, rng: random.Random) -> bytes:
    """A dummy report of the same size as ``real``: its contacts with the dummy token (the
    phone's ``dummy_contacts`` keeps the shape; here the contacts are random already), the
    token's kind drawn as the phone draws it, padded to the real code's length."""
    body = orjson.loads(real)
    token = dummy_code(rng.randbytes)
    while len(token) != len(body["token"]):
        token = dummy_code(rng.randbytes)
    return orjson.dumps({"token": token, "contacts": body["contacts"]})


async def send(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[int, int, float]:
    """(status, answer bytes, seconds from sending to the answer's last byte)."""
    started = time.perf_counter()
    async with session.post(url, data=body, headers=JSON_HEADERS) as response:
        answer = await response.read()
    return response.status, len(answer), time.perf_counter() - started


async def measure(
    url: str, seed_path: Path, reports: int, rng: random.Random
) -> dict[str, list[tuple[int, int, float]]]:
    """Real and dummy reports in a random order: their (status, size, seconds)."""
    messages = Messages(SeedFile.read(seed_path), time.time)
    codes = list(messages.seed.codes)
    phones = messages.seed.phones

    def real_body() -> bytes:
        return messages.report_body(codes.pop(), rng.sample(range(phones), 3), messages.now_ntp())

    results: dict[str, list[tuple[int, int, float]]] = {"real": [], "dummy": []}
    async with aiohttp.ClientSession() as session:
        for _ in range(WARM_UP):  # the server's sample of real report times fills up, and its
            await send(session, url, real_body())  # estimate of its own wake-up lateness
            body = real_body()
            codes.append(orjson.loads(body)["token"])
            await send(session, url, dummy_of(body, rng))
        order = ["real"] * reports + ["dummy"] * reports
        rng.shuffle(order)
        for kind in order:
            body = real_body()
            if kind == "dummy":
                codes.append(orjson.loads(body)["token"])  # unspent: a real report takes it
                body = dummy_of(body, rng)
            results[kind].append(await send(session, url, body))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m loadtest.dummies", description=__doc__)
    parser.add_argument("--reports", type=int, default=600, help="real reports (and dummies)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the order")
    args = parser.parse_args(argv)
    if args.reports < 20:
        parser.error("--reports must be at least 20")
    rng = random.Random(args.seed)
    with (
        tempfile.TemporaryDirectory(prefix="robert-dummies-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        work = Path(tmp)
        store = stack.enter_context(services.own_redis(work))
        settings = Settings(data_dir=str(work), store=store, keys_dir=str(work / "keys"))
        seed(settings, 1000, args.reports + 2 * WARM_UP + 10, work / "seed.bin")
        env = {
            "ROBERT_STORE": store,
            "ROBERT_DATA_DIR": str(work),
            "ROBERT_KEYS_DIR": str(work / "keys"),
            "ROBERT_CAPTCHA": "off",
            "ROBERT_EMBEDDED_WORKER": "false",
            "ROBERT_LOG_LEVEL": "WARNING",
        }
        server = stack.enter_context(services.robert_server(env, services.free_port(), work))
        results = asyncio.run(
            measure(f"{server}{API}/report", work / "seed.bin", args.reports, rng)
        )
    real, dummy = results["real"], results["dummy"]
    for name, rows in (("real", real), ("dummy", dummy)):
        seconds = sorted(r[2] * 1000 for r in rows)
        print(
            f"{name:>5}: n={len(rows)} statuses={sorted({r[0] for r in rows})} "
            f"sizes={sorted({r[1] for r in rows})} ms: median={statistics.median(seconds):.2f} "
            f"mean={statistics.fmean(seconds):.2f} p90={seconds[int(0.9 * len(seconds))]:.2f}"
        )
        deciles = " ".join(f"{q:.2f}" for q in statistics.quantiles(seconds, n=10))
        print(f"{name:>5}: deciles ms: {deciles}")
    same = {r[:2] for r in real} == {r[:2] for r in dummy}
    ks = stats.ks_2samp([r[2] for r in real], [r[2] for r in dummy])
    mwu = stats.mannwhitneyu([r[2] for r in real], [r[2] for r in dummy])
    print(f"same statuses and sizes: {same}")
    print(f"dummies: KS D={ks.statistic:.3f} p={ks.pvalue:.3f} MWU p={mwu.pvalue:.3f}")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
