"""Locust users that behave like the StopCovid app against a ROBERT server.

Run with the seed file written by ``robert loadtest seed`` in ``ROBERT_LOADTEST_SEED``::

    ROBERT_LOADTEST_SEED=seed.bin locust -f loadtest/locustfile.py --headless \
        -u 50 -r 50 -t 30s --host http://127.0.0.1:8080 AppUser

``AppUser`` mixes status checks of seeded phones (most requests), registrations with a fresh
P-256 key (through the gate's proof of work: the server runs ``--captcha pow`` or ``off``),
reports gated by the seeded codes (each used once) and malformed requests that must get a
4xx. ``StatusUser`` sends status checks only (the bench compares it with a bare aiohttp
handler). Every body is a real protocol message built with ``protocol/``.

Phones: each Locust process takes the phones ``i % processes == process index`` and its users
take the next one round-robin from that share; a phone is never used twice within one second
(the server refuses a replayed (epoch, time) with 409), the generator waits instead. Set
``ROBERT_LOADTEST_PROCESSES`` to the number of worker processes when running distributed.
``ROBERT_LOADTEST_RATE`` (requests per second per user) paces users; unset, they do not wait.
"""

from __future__ import annotations

import os
import random
import time
from typing import Any

import gevent
import orjson
from locust import FastHttpUser, constant, constant_throughput, events, task
from locust.env import Environment

from loadtest.messages import JSON_HEADERS, Messages, malformed_requests, register_body
from loadtest.seedfile import SEED_ENV, SeedFile
from phone.client import API
from protocol.pow import solve

CONTACTS_PER_REPORT = 3


class Share:
    """This process's share of the seeded phones and codes, handed out round-robin."""

    def __init__(self, messages: Messages, index: int, count: int) -> None:
        self.messages = messages
        seed = messages.seed
        self.phones = range(index, seed.phones, count)
        self.codes = seed.codes[index::count]
        self._next_phone = 0
        self._last_use: dict[int, int] = {}

    def phone(self) -> int:
        """The next phone of the share, waiting if it was already used this second."""
        if not self.phones:
            raise RuntimeError("this Locust process has no phones: seed more")
        phone = self.phones[self._next_phone % len(self.phones)]
        self._next_phone += 1
        while self._last_use.get(phone) == int(time.time()):
            gevent.sleep(1.0 - time.time() % 1.0 + 0.001)
        self._last_use[phone] = int(time.time())
        return phone

    def code(self) -> str | None:
        """An unused submission code, or None once all are spent."""
        return self.codes.pop() if self.codes else None


_share: Share | None = None
POW_CAPTCHA = orjson.dumps({"type": "POW", "locale": "en"})


def share(environment: Environment) -> Share:
    """The process's share, built on first use (the worker index is known only then)."""
    global _share
    if _share is None:
        path = os.environ.get(SEED_ENV)
        if not path:
            raise RuntimeError(f"set {SEED_ENV} to the seed file of 'robert loadtest seed'")
        messages = Messages(SeedFile.read(path), time.time)
        runner = environment.runner
        index = max(0, getattr(runner, "worker_index", 0))
        count = int(os.environ.get("ROBERT_LOADTEST_PROCESSES", "1"))
        _share = Share(messages, index % count, count)
    return _share


def _check_seed(environment: Environment, **_: Any) -> None:
    """Fail fast (before any user starts) when the seed file is missing."""
    path = os.environ.get(SEED_ENV)
    if not path or not os.path.exists(path):
        raise SystemExit(f"locustfile: set {SEED_ENV} to an existing seed file (got {path!r})")


events.init.add_listener(_check_seed)  # type: ignore[no-untyped-call]  # locust: untyped


def _wait_time() -> Any:
    rate = os.environ.get("ROBERT_LOADTEST_RATE")
    return constant_throughput(float(rate)) if rate else constant(0)


class _RobertUser(FastHttpUser):
    """Common plumbing: JSON posts with expected-status checks."""

    abstract = True
    wait_time = _wait_time()

    def post(self, name: str, path: str, body: bytes, expected: int) -> dict[str, Any] | None:
        """POST ``body``; success only if the answer has status ``expected``; its JSON."""
        with self.client.post(
            path, data=body.decode(), headers=JSON_HEADERS, name=name, catch_response=True
        ) as response:
            if response.status_code != expected:
                response.failure(f"{name}: HTTP {response.status_code}: {response.text[:200]}")
                return None
            try:
                answer: dict[str, Any] = orjson.loads(response.content or b"")
            except orjson.JSONDecodeError:
                response.failure(f"{name}: answer is not JSON")
                return None
            response.success()
            return answer

    def check_status(self) -> None:
        """A status request of the next phone: 200 with ``riskLevel`` and fresh ``tuples``, the
        fields without which the apps discard an answer."""
        pool = share(self.environment)
        messages = pool.messages
        body = messages.status_body(pool.phone(), messages.now_ntp())
        answer = self.post("status", f"{API}/status", body, 200)
        if answer is not None and not ("riskLevel" in answer and answer.get("tuples")):
            self.environment.events.request.fire(
                request_type="CHECK", name="status", response_time=0, response_length=0,
                exception=AssertionError("status answer without riskLevel or tuples"),
                context={},
            )  # fmt: skip


class StatusUser(_RobertUser):
    """Status checks only (the hot path, and what the baseline comparison uses)."""

    @task
    def status(self) -> None:
        """One status check."""
        self.check_status()


class AppUser(_RobertUser):
    """The app's traffic mix: mostly status, some registrations, few reports, some junk."""

    @task(90)
    def status(self) -> None:
        """One status check."""
        self.check_status()

    @task(4)
    def register(self) -> None:
        """Register a new phone through the gate's proof of work (``--captcha pow``; with the
        gate off, difficulty 0)."""
        challenge = self.post("captcha", f"{API}/captcha", POW_CAPTCHA, 201)
        if challenge is None:
            return
        captcha_id = challenge["id"]
        captcha = solve(captcha_id, int(challenge["difficulty"]))
        answer = self.post("register", f"{API}/register", register_body(captcha, captcha_id), 201)
        if answer is not None and not answer.get("tuples"):
            self.environment.events.request.fire(
                request_type="CHECK", name="register", response_time=0, response_length=0,
                exception=AssertionError("registration answer has no tuples"), context={},
            )  # fmt: skip

    @task(1)
    def report(self) -> None:
        """Report contacts with three seeded phones, with a code of its own (used once)."""
        pool = share(self.environment)
        code = pool.code()
        if code is None:
            return  # codes spent: the mix goes on without reports
        contacts = random.sample(pool.phones, min(CONTACTS_PER_REPORT, len(pool.phones)))
        messages = pool.messages
        body = messages.report_body(code, contacts, messages.now_ntp())
        self.post("report", f"{API}/report", body, 200)

    @task(5)
    def malformed(self) -> None:
        """A request the server must refuse: success on 4xx, failure on 5xx or 2xx."""
        pool = share(self.environment)
        messages = pool.messages
        name, path, body = random.choice(
            malformed_requests(messages, pool.phone(), messages.now_ntp())
        )
        with self.client.post(
            path, data=body.decode(), headers=JSON_HEADERS, name=name, catch_response=True
        ) as response:
            if 400 <= response.status_code < 500:
                response.success()
            else:
                response.failure(f"{name}: expected a 4xx, got HTTP {response.status_code}")
