"""Who a request comes from, and the limits on failed submission codes.

The client address is the TCP peer, unless that peer is one of the configured reverse proxies
(``trusted_proxies``): then it is the right-most address of ``X-Forwarded-For`` that is not
itself a trusted proxy (entries further left were written by the client and prove nothing).

Failed codes are limited by three token buckets shared by every server process through the
store: per client (a keyed hash of its address, never the address), per code prefix (the first
two characters of the canonical code: guesses spread over many addresses still meet there) and
globally. A token is taken from all three in one atomic step *before* the code is tried and
given back when it was accepted: a burst of concurrent guesses cannot pass a check made before
any of them is charged. One address spends only its own bucket before it is refused; the
prefix and global buckets are sized far above one client's so that one attacker cannot empty
them.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from server.store.base import Budget, Store

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
HOUR = 3600.0


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated addresses or CIDR networks; ValueError names a bad one."""
    networks = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an address or network: {item!r}") from None
    return tuple(networks)


def _trusted(address: str, trusted: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


def client_address(peer: str | None, forwarded: Iterable[str], trusted: Sequence[Network]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy, then the right-most
    untrusted hop of the ``X-Forwarded-For`` values (in the order received)."""
    if peer is None:
        return "?"
    if not trusted or not _trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, trusted):
            return hop
    return hops[0] if hops else peer


@dataclass(frozen=True, slots=True)
class CodeLimits:
    """Failed submission codes allowed an hour: per client, per code prefix, overall."""

    per_client: int = 10
    per_prefix: int = 200
    overall: int = 20_000


class CodeAttempts:
    """The three failed-code buckets, in the store; and an in-process memory of clients
    refused lately, so that their next uploads are refused before their bodies are read."""

    def __init__(
        self, store: Store, key: bytes, limits: CodeLimits, remember: int = 100_000
    ) -> None:
        self.store = store
        self._key = key
        self.limits = limits
        self._refused: OrderedDict[str, float] = OrderedDict()
        self._remember = remember

    def pseudonym(self, client: str) -> str:
        """A keyed hash of the client's address: what the store holds instead of it."""
        return hmac.digest(self._key, client.encode(), "sha256")[:12].hex()

    def budgets(self, client: str, code: str) -> list[Budget]:
        """The client's, the code prefix's and the global bucket."""
        limits = self.limits
        return [
            Budget("c" + self.pseudonym(client), limits.per_client, HOUR),
            Budget("p" + code[:2].lower(), limits.per_prefix, HOUR),
            Budget("g", limits.overall, HOUR),
        ]

    def refused_for(self, client: str, now: float) -> float:
        """Seconds this client was told to wait still left (0 if none): checked before the
        body is read, in memory (a hint: the store's buckets decide)."""
        until = self._refused.get(client)
        if until is None:
            return 0.0
        if until <= now:
            del self._refused[client]
            return 0.0
        return until - now

    async def take(self, client: str, code: str, now: float) -> float:
        """Take a token from each bucket: 0.0, or the seconds to wait (nothing taken)."""
        wait = await self.store.take_budget(self.budgets(client, code), now)
        if wait > 0:
            self._refused[client] = now + wait
            self._refused.move_to_end(client)
            while len(self._refused) > self._remember:
                self._refused.popitem(last=False)
        return wait

    async def give_back(self, client: str, code: str, now: float) -> None:
        """The code was accepted: the attempt does not count."""
        await self.store.refund_budget(self.budgets(client, code), now)
