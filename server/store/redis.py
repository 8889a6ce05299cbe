"""The production store: Redis, standalone or Redis Cluster.

Every key of a registration carries the ID_A in a hash tag (``r{hex}`` for the registration,
``x{hex}`` for its exposures, ``p{hex}`` for its push information), so they land in the same
cluster slot and no operation touches two registrations. A registration is one string with a
fixed binary layout (89 bytes) so that it costs well under 250 bytes of Redis memory;
read-modify-write steps are small Lua scripts on that one string, one round trip each. A
captcha is one hash ``c{id}`` that Redis also expires by itself a minute after its time.

URLs (see ``parse_url``): ``redis://host:port/db`` is one server (one report stream, the
auto-pipelined fast path); ``redis+cluster://host:port[,host:port...]`` (``rediss+cluster`` with
TLS) is a Redis Cluster through ``redis.asyncio.cluster.RedisCluster``. On a cluster the report
queue is sharded over ``reports{0}`` .. ``reports{N-1}`` (each its own slot, so the queue spreads
over the masters). Query options, on either kind: ``shards=N`` (default 1 standalone, 8
cluster), ``wait=R`` and ``wait_timeout_ms=T`` (after each acknowledged write, ``WAIT R T`` on
the same connection, so the write is on R replicas before the API answers; default 0, off).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import struct
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from protocol.types import IdA, MacKey, SecretKey, TupleKey
from server.store.base import (
    Budget,
    Captcha,
    PushInfo,
    QueuedReport,
    Registration,
    RiskState,
    StatusOutcome,
    StatusRecorded,
    Store,
    StoreUnavailable,
    exposure_tag,
)
from server.store.resp import PipelinedRedis

# k_a, k_ea | last_status_epoch, last_status_time | at_risk, risk_level, last_contact_epoch,
# last_scoring_epoch. Little-endian, no padding; the Lua scripts below read and write the same
# offsets (Lua's are 1-based).
LAYOUT = struct.Struct("<32s32siqBiii")
STATUS = struct.Struct("<iq")
STATUS_OFFSET = 64
RISK = struct.Struct("<Biii")
RISK_OFFSET = STATUS_OFFSET + STATUS.size

log = logging.getLogger("robert.store.redis")

STREAM = "reports"
GROUP = "workers"
MAX_AUTOCLAIM_ROUNDS = 4
"""XAUTOCLAIM scans at most 10 x count pending entries per call; a few calls suffice."""
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
DEFAULT_CLUSTER_SHARDS = 8
SHARD_POLL_SECONDS = 0.05
"""Sharded streams live in different slots, so one blocking XREADGROUP cannot watch them all:
an idle sharded worker polls them this often instead."""

# KEYS: registration, push information. ARGV: epoch (the server's), time, min gap, '1' to read
# the push information. Returns {outcome, the registration as it was, its push information}:
# the caller verifies the MAC on it.
RECORD_STATUS = f"""
local v = redis.call('GET', KEYS[1])
if not v then return {{'unknown'}} end
local push = false
if ARGV[4] == '1' then push = redis.call('GET', KEYS[2]) end
local last_epoch, last_time = struct.unpack('<i4i8', v, {STATUS_OFFSET + 1})
local epoch, t, gap = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if last_epoch ~= -1 then
  if t == last_time then return {{'replayed', v, push}} end
  if gap > 0 and epoch - last_epoch < gap then return {{'too_soon', v, push}} end
end
redis.call('SETRANGE', KEYS[1], {STATUS_OFFSET}, struct.pack('<i4i8', epoch, t))
return {{'accepted', v, push}}
"""

# KEYS: registration, push information. ARGV: the registration, the push information ('' for
# none). SET NX of both, or nothing.
CREATE_REGISTRATION = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2]) end
return 1
"""

# KEYS: registration, push information. ARGV: the push information.
SET_PUSH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
return 1
"""

# KEYS: captcha. ARGV: kind, answer, locale, expires, attempts, seconds Redis keeps it.
CREATE_CAPTCHA = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'k', ARGV[1], 'a', ARGV[2], 'l', ARGV[3], 'e', ARGV[4], 'n', ARGV[5])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[6]))
return 1
"""

# KEYS: captcha. ARGV: now. HGETALL unless expired.
GET_CAPTCHA = """
local expires = redis.call('HGET', KEYS[1], 'e')
if not expires or tonumber(expires) < tonumber(ARGV[1]) then return false end
return redis.call('HGETALL', KEYS[1])
"""

# KEYS: captcha. ARGV: now. Delete if unexpired: 1 for the one caller that did.
USE_CAPTCHA = """
local expires = redis.call('HGET', KEYS[1], 'e')
if not expires or tonumber(expires) < tonumber(ARGV[1]) then return 0 end
return redis.call('DEL', KEYS[1])
"""

# KEYS: captcha. ARGV: max attempts. Count a wrong answer; delete at the limit.
FAIL_CAPTCHA = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local attempts = redis.call('HINCRBY', KEYS[1], 'n', 1)
if attempts >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return attempts
"""

CAPTCHA_GRACE_SECONDS = 60
"""Redis forgets a captcha this long after it expired (the store's own check refuses it at
once); the SQLite store purges instead."""

SET_RISK = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SETRANGE', KEYS[1], {RISK_OFFSET}, ARGV[1])
return 1
"""

# KEYS: registration, exposures (same hash tag). ARGV[1]: the default risk fields.
DELETE_EXPOSURES = f"""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2])
redis.call('SETRANGE', KEYS[1], {RISK_OFFSET}, ARGV[1])
return 1
"""

# KEYS: registration, exposures. ARGV: field, score, field, score...
ADD_EXPOSURES = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
return 1
"""

# KEYS: exposures. ARGV[1]: first epoch kept. Fields are '<epoch>:<report id>'.
PURGE_EXPOSURES = """
local before = tonumber(ARGV[1])
local removed = 0
for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
  local epoch = tonumber(string.match(field, '^(-?%d+):'))
  if epoch and epoch < before then
    redis.call('HDEL', KEYS[1], field)
    removed = removed + 1
  end
end
return removed
"""

# KEYS: registration, exposures, push information (same hash tag). A script rather than MULTI
# so that it can be followed by WAIT on the same connection like the other acknowledged writes.
DELETE_REGISTRATION = """
local n = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2], KEYS[3])
return n
"""


# KEYS: buckets (one slot: the {budgets} hash tag). ARGV: now (ms), then burst and period (ms)
# of each bucket. Take one token from each, or none; '0', or the ms until all have one. A bucket
# is a hash {t: tokens, u: updated (ms)} that Redis forgets once it would be full again.
TAKE_BUDGET = """
local now = tonumber(ARGV[1])
local wait = 0
local levels = {}
for i, key in ipairs(KEYS) do
  local burst, per = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', key, 't', 'u')
  local tokens = burst
  if v[1] then
    tokens = math.min(burst, tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * burst / per)
  end
  levels[i] = tokens
  if tokens < 1 then wait = math.max(wait, (1 - tokens) * per / burst) end
end
if wait > 0 then return tostring(math.ceil(wait)) end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 't', tostring(levels[i] - 1), 'u', ARGV[1])
  redis.call('PEXPIRE', key, math.ceil(tonumber(ARGV[2 * i + 1])))
end
return '0'
"""

# Same KEYS and ARGV: one token back to each bucket, up to its burst.
REFUND_BUDGET = """
local now = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local burst, per = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local v = redis.call('HMGET', key, 't', 'u')
  if v[1] then
    local tokens = tonumber(v[1]) + math.max(0, now - tonumber(v[2])) * burst / per
    if tokens + 1 >= burst then
      redis.call('DEL', key)
    else
      redis.call('HSET', key, 't', tostring(tokens + 1), 'u', ARGV[1])
    end
  end
end
return 1
"""


# KEYS: a report stream. ARGV: the group, the entry id. Acknowledge and delete the entry, then
# trim the stream below the oldest entry still pending or undelivered: XDEL only marks an entry
# deleted, its bytes stay in the stream's node until the whole node goes.
ACK_REPORT = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local floor = false
if pending[1] > 0 then
  floor = pending[2]
else
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local name, last = nil, nil
    for i = 1, #g, 2 do
      if g[i] == 'name' then name = g[i + 1] elseif g[i] == 'last-delivered-id' then
        last = g[i + 1]
      end
    end
    if name == ARGV[1] and last then
      local ms, seq = string.match(last, '^(%d+)-(%d+)$')
      floor = ms .. '-' .. string.format('%d', tonumber(seq) + 1)
    end
  end
end
if floor then redis.call('XTRIM', KEYS[1], 'MINID', floor) end
return 1
"""


def pack_registration(r: Registration) -> bytes:
    """The fixed binary layout of a registration."""
    return LAYOUT.pack(
        r.k_a.material,
        r.k_ea.material,
        r.last_status_epoch,
        r.last_status_time,
        *_risk_fields(r.risk),
    )


def pack_push(push: PushInfo) -> bytes:
    """Push information as one string: its three fields, NUL-separated (the API refuses NULs)."""
    return "\0".join((push.token, push.locale, push.timezone)).encode()


def unpack_push(value: bytes) -> PushInfo:
    """Inverse of ``pack_push``."""
    token, locale, timezone = value.decode().split("\0")
    return PushInfo(token, locale, timezone)


BULK_CHUNK = 10_000
"""Registrations per pipeline in ``create_registrations``."""

STATUS_OUTCOMES = {outcome.value.encode(): outcome for outcome in StatusOutcome}
"""The status script's first reply, as bytes, to its outcome (a dict lookup per request)."""

_RISK_STATES: dict[tuple[int, int, int, int], RiskState] = {}


def _risk_state(fields: tuple[int, int, int, int]) -> RiskState:
    """One shared immutable RiskState per distinct value: most phones hold the same few."""
    risk = _RISK_STATES.get(fields)
    if risk is None:
        if len(_RISK_STATES) >= 4096:
            _RISK_STATES.clear()
        at_risk, level, contact, scoring = fields
        risk = _RISK_STATES[fields] = RiskState(bool(at_risk), level, contact, scoring)
    return risk


_new = object.__new__
_SET_MATERIAL = SecretKey.__dict__["material"].__set__
_SET_REGISTRATION = tuple(
    Registration.__dict__[f.name].__set__ for f in dataclasses.fields(Registration)
)


def _keys(k_a: bytes, k_ea: bytes) -> tuple[MacKey, TupleKey]:
    """K_A and K_EA as read from a registration of ``LAYOUT`` (32 bytes each), made through
    their slots: every status request reads them."""
    mac_key, tuple_key = _new(MacKey), _new(TupleKey)
    _SET_MATERIAL(mac_key, k_a)
    _SET_MATERIAL(tuple_key, k_ea)
    return mac_key, tuple_key


def unpack_registration(id_a: IdA, value: bytes) -> Registration:
    """Inverse of ``pack_registration``.

    Every status request unpacks one, and a frozen dataclass's ``__init__`` sets each field
    through ``object.__setattr__`` (and a key checks its size again): the fields are set
    through their slots instead, half the time. Only for values of this layout, which fixes
    the keys' sizes (``LAYOUT``: 32 bytes each, as ``MacKey`` and ``TupleKey`` hold)."""
    k_a, k_ea, status_epoch, status_time, *risk = LAYOUT.unpack(value)
    mac_key, tuple_key = _keys(k_a, k_ea)
    registration = _new(Registration)
    set_id, set_k_a, set_k_ea, set_epoch, set_time, set_risk = _SET_REGISTRATION
    set_id(registration, id_a)
    set_k_a(registration, mac_key)
    set_k_ea(registration, tuple_key)
    set_epoch(registration, status_epoch)
    set_time(registration, status_time)
    set_risk(registration, _risk_state(tuple(risk)))
    return registration


def _risk_fields(risk: RiskState) -> tuple[int, int, int, int]:
    """The risk state in ``RISK`` order."""
    return int(risk.at_risk), risk.risk_level, risk.last_contact_epoch, risk.last_scoring_epoch


def _escape_glob(text: str) -> str:
    """Quote the characters SCAN MATCH treats as patterns."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a Redis store URL asks for, once our own query options are taken out."""

    cluster: bool
    url: str
    """The URL handed to redis-py (standalone), without our options."""
    nodes: tuple[tuple[str, int], ...] = ()
    """Cluster start-up nodes (any reachable one is enough; the others are discovered)."""
    username: str | None = None
    password: str | None = None
    tls: bool = False
    shards: int = 1
    wait_replicas: int = 0
    wait_timeout_ms: int = 100


def parse_url(url: str) -> RedisTarget:
    """Split a ``redis://``, ``rediss://``, ``redis+cluster://`` or ``rediss+cluster://`` URL.

    Our options (``shards``, ``wait``, ``wait_timeout_ms``) are removed so that redis-py never
    sees a query argument it does not know.
    """
    parts = urlsplit(url)
    ours: dict[str, int] = {}
    rest = []
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in ("shards", "wait", "wait_timeout_ms"):
            try:
                ours[name] = int(value)
            except ValueError:
                raise ValueError(f"store URL option {name} must be an integer") from None
        else:
            rest.append((name, value))
    cluster = parts.scheme in CLUSTER_SCHEMES
    shards = ours.get("shards", DEFAULT_CLUSTER_SHARDS if cluster else 1)
    if shards < 1 or ours.get("wait", 0) < 0 or ours.get("wait_timeout_ms", 100) < 0:
        raise ValueError("store URL options: shards >= 1, wait >= 0, wait_timeout_ms >= 0")
    common = {
        "shards": shards,
        "wait_replicas": ours.get("wait", 0),
        "wait_timeout_ms": ours.get("wait_timeout_ms", 100),
    }
    if not cluster:
        plain = urlunsplit(parts._replace(query=urlencode(rest)))
        return RedisTarget(cluster=False, url=plain, **common)  # type: ignore[arg-type]
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    nodes = []
    for hostport in hosts.split(","):
        host, _, port = hostport.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"cluster store URL node {hostport!r} is not host:port")
        nodes.append((host.strip("[]"), int(port)))
    return RedisTarget(
        cluster=True,
        url=url,
        nodes=tuple(nodes),
        username=unquote(username) or None,
        password=unquote(password) or None,
        tls=parts.scheme.startswith("rediss"),
        **common,
    )


def connect_sync_client(url: str) -> Any:
    """A blocking redis-py client for the same URLs (tools: seeding, measurements)."""
    import redis
    import redis.cluster

    target = parse_url(url)
    if not target.cluster:
        return redis.Redis.from_url(target.url)
    return redis.cluster.RedisCluster(
        startup_nodes=[
            redis.cluster.ClusterNode(host, port)  # type: ignore[no-untyped-call]
            for host, port in target.nodes
        ],
        username=target.username,
        password=target.password,
        ssl=target.tls,
    )


def registration_key(id_a: IdA, prefix: str = "") -> str:
    """The key of a registration: its ID_A in a hash tag, so each registration has its slot."""
    return f"{prefix}r{{{bytes(id_a).hex()}}}"


def connect_client(target: Any, **options: Any) -> aioredis.Redis | RedisCluster:
    """A redis-py asyncio client for a parsed store URL: standalone or cluster."""
    if isinstance(target, str):
        target = parse_url(target)
    if not target.cluster:
        return aioredis.Redis.from_url(target.url, decode_responses=False, **options)
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes],
        username=target.username,
        password=target.password,
        ssl=target.tls,
        decode_responses=False,
        **options,
    )


class RedisStore(Store):
    """Store in Redis through ``redis.asyncio`` (hiredis parser when installed)."""

    def __init__(
        self,
        url: str,
        prefix: str = "",
        pool_size: int | None = None,
        pool_wait: float | None = None,
        **options: Any,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.target = parse_url(url)
        self._options = options
        self.pool_size = pool_size
        """Connections at most (standalone: a blocking pool, waited for ``pool_wait`` s)."""
        self.pool_wait = pool_wait
        self._client: aioredis.Redis | RedisCluster | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._fast: PipelinedRedis | None = None
        self._enqueue_turn = 0
        self._claim_turn = 0
        self.unreplicated_writes = 0
        """Acknowledged writes that WAIT saw reach fewer replicas than asked (degraded)."""

    # --- keys --------------------------------------------------------------------------
    def _reg_key(self, id_a: IdA) -> str:
        return registration_key(id_a, self.prefix)

    def _exp_key(self, id_a: IdA) -> str:
        return f"{self.prefix}x{{{bytes(id_a).hex()}}}"

    def _push_key(self, id_a: IdA) -> str:
        return f"{self.prefix}p{{{bytes(id_a).hex()}}}"

    def _captcha_key(self, captcha_id: str) -> str:
        return f"{self.prefix}c{{{captcha_id}}}"

    def _stream(self, shard: int) -> str:
        """One stream unsharded (the historical name); else one per shard, each its own slot."""
        if self.target.shards == 1:
            return f"{self.prefix}{STREAM}"
        return f"{self.prefix}{STREAM}{{{shard}}}"

    def _report_id(self, shard: int, entry_id: bytes | str) -> str:
        """A report id names its shard so that ack finds the stream: ``<shard>/<entry id>``."""
        return _text(entry_id) if self.target.shards == 1 else f"{shard}/{_text(entry_id)}"

    def _split_report_id(self, report_id: str) -> tuple[int, str]:
        if self.target.shards == 1:
            return 0, report_id
        shard, _, entry_id = report_id.partition("/")
        return int(shard), entry_id

    @property
    def client(self) -> aioredis.Redis | RedisCluster:
        """The connected client."""
        if self._client is None:
            raise RuntimeError("RedisStore is not open")
        return self._client

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA a registered script (loaded on first use by redis-py)."""
        return await self._scripts[name](keys=keys, args=args, client=self.client)

    async def _acknowledged(self, key: str, *command: Any) -> Any:
        """Run a write the API acknowledges; with ``wait=R``, follow it by ``WAIT R T`` on the
        same connection (a pipeline to the key's node) so it survives a failover."""
        if not self.target.wait_replicas:
            return await self.client.execute_command(*command)
        wait: list[Any] = ["WAIT", self.target.wait_replicas, self.target.wait_timeout_ms]
        pipe = self.client.pipeline(transaction=False)
        pipe.execute_command(*command)
        if isinstance(self.client, RedisCluster):
            pipe.execute_command(*wait, target_nodes=self.client.get_node_from_key(key))
        else:
            pipe.execute_command(*wait)
        result, replicas = await pipe.execute()
        if int(replicas) < self.target.wait_replicas:
            self.unreplicated_writes += 1
            if self.unreplicated_writes % 1000 == 1:  # once, then every 1000th: no log flood
                log.warning(
                    "%d write(s) reached fewer replicas than %d (latest: %d)",
                    self.unreplicated_writes,
                    self.target.wait_replicas,
                    replicas,
                )
        return result

    async def _acknowledged_script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """A script as an acknowledged write: EVALSHA, or EVAL (no NOSCRIPT inside the
        pipeline after a failover) followed by WAIT."""
        if not self.target.wait_replicas:
            return await self._script(name, keys, args)
        source = self._scripts[name].script
        return await self._acknowledged(keys[0], "EVAL", source, len(keys), *keys, *args)

    # --- lifecycle ---------------------------------------------------------------------
    def _connect(self) -> aioredis.Redis | RedisCluster:
        if self.pool_size is None or self.target.cluster:
            # A cluster client keeps a pool per node, refused (not waited for) when full.
            options = dict(self._options)
            if self.pool_size is not None:
                options.setdefault("max_connections", self.pool_size)
            return connect_client(self.target, **options)
        pool = aioredis.BlockingConnectionPool.from_url(
            self.target.url,
            max_connections=self.pool_size,
            timeout=self.pool_wait,
            decode_responses=False,
            **self._options,
        )
        return aioredis.Redis.from_pool(pool)  # the client owns the pool: closed with it

    async def open(self) -> None:
        """Connect, register the scripts and create the consumer groups; idempotent."""
        if self._client is not None:
            return
        client = self._connect()
        self._client = client
        self._scripts = {
            name: client.register_script(source)
            for name, source in {
                "record_status": RECORD_STATUS,
                "create_registration": CREATE_REGISTRATION,
                "set_push": SET_PUSH,
                "create_captcha": CREATE_CAPTCHA,
                "get_captcha": GET_CAPTCHA,
                "use_captcha": USE_CAPTCHA,
                "fail_captcha": FAIL_CAPTCHA,
                "set_risk": SET_RISK,
                "delete_registration": DELETE_REGISTRATION,
                "delete_exposures": DELETE_EXPOSURES,
                "add_exposures": ADD_EXPOSURES,
                "purge_exposures": PURGE_EXPOSURES,
                "take_budget": TAKE_BUDGET,
                "ack_report": ACK_REPORT,
                "refund_budget": REFUND_BUDGET,
            }.items()
        }
        try:
            if self.url.startswith("redis://"):
                # The hot path (registration lookup, status, registration) is auto-pipelined;
                # plain redis:// only: it knows nothing of slots or TLS.
                self._fast = PipelinedRedis(self.target.url)
                await client.script_load(RECORD_STATUS)
            for shard in range(self.target.shards):
                await self._create_group(self._stream(shard))
        except (RedisError, OSError) as exc:
            await self.close()
            where = self.url.split("@")[-1].split("?")[0]
            raise StoreUnavailable(f"cannot reach the Redis store at {where}: {exc}") from None
        except BaseException:
            await self.close()
            raise

    async def _create_group(self, stream: str) -> None:
        try:
            # From id 0, so reports queued before the group existed are still delivered.
            await self.client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def close(self) -> None:
        """Close the client and its connection pool."""
        if self._fast is not None:
            fast, self._fast = self._fast, None
            await fast.close()
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def ping(self) -> bool:
        """True if Redis answers PING (on a cluster: every master answers)."""
        try:
            if isinstance(self.client, RedisCluster):
                await self.client.ping(target_nodes=RedisCluster.PRIMARIES)
                return True
            return bool(await self.client.ping())
        except (RedisError, OSError, RuntimeError):
            return False

    # --- registrations -----------------------------------------------------------------
    async def create_registration(
        self, registration: Registration, push: PushInfo | None = None
    ) -> bool:
        """SET NX of the packed registration (with its push information: one script)."""
        key = self._reg_key(registration.id_a)
        value = pack_registration(registration)
        if push is not None:
            keys = [key, self._push_key(registration.id_a)]
            args = [value, pack_push(push)]
            return bool(await self._acknowledged_script("create_registration", keys, args))
        if self._fast is not None and not self.target.wait_replicas:
            return await self._fast.execute("SET", key, value, "NX") is not None
        return await self._acknowledged(key, "SET", key, value, "NX") is not None

    async def create_registrations(self, registrations: Sequence[Registration]) -> list[bool]:
        """SET NX of each, in pipelines of 10,000 (a cluster pipeline routes each by slot)."""
        created: list[bool] = []
        for start in range(0, len(registrations), BULK_CHUNK):
            async with self.client.pipeline(transaction=False) as pipe:
                for r in registrations[start : start + BULK_CHUNK]:
                    pipe.set(self._reg_key(r.id_a), pack_registration(r), nx=True)
                created += [bool(answer) for answer in await pipe.execute()]
        return created

    async def get_registration(self, id_a: IdA) -> Registration | None:
        """GET and unpack."""
        key = self._reg_key(id_a)
        value = await (self._fast.execute("GET", key) if self._fast else self.client.get(key))
        return None if value is None else unpack_registration(id_a, _raw(value))

    async def get_keys(self, id_a: IdA) -> tuple[MacKey, TupleKey] | None:
        """GETRANGE of K_A's and K_EA's 64 bytes (the first two fields of the layout)."""
        key = f"{self.prefix}r{{{bytes(id_a).hex()}}}"
        fast = self._fast
        value = await (
            fast.execute("GETRANGE", key, 0, 63) if fast else self.client.getrange(key, 0, 63)
        )
        if not value:
            return None
        raw = _raw(value)
        return _keys(raw[:32], raw[32:])

    async def record_status(
        self,
        id_a: IdA,
        epoch: int,
        time: int,
        min_gap_epochs: int,
        with_push: bool = False,
    ) -> StatusRecorded:
        """One script, one round trip: read, replay and rate limit, SETRANGE of the status."""
        tag = bytes(id_a).hex()
        keys = [f"{self.prefix}r{{{tag}}}", f"{self.prefix}p{{{tag}}}"]
        args = [epoch, time, min_gap_epochs, "1" if with_push else "0"]
        if self._fast is None:
            reply = await self._script("record_status", keys, args)
        else:
            sha = self._scripts["record_status"].sha
            try:
                reply = await self._fast.execute("EVALSHA", sha, 2, *keys, *args)
            except ResponseError as exc:  # script cache flushed (Redis restarted): reload
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                reply = await self._script("record_status", keys, args)
        outcome = STATUS_OUTCOMES[_raw(reply[0])]
        before = unpack_registration(id_a, _raw(reply[1])) if len(reply) > 1 else None
        push = unpack_push(_raw(reply[2])) if len(reply) > 2 and reply[2] else None
        return StatusRecorded(outcome, before, push)

    async def set_push_info(self, id_a: IdA, push: PushInfo) -> bool:
        """SET of the push key if the registration exists (one script)."""
        keys = [self._reg_key(id_a), self._push_key(id_a)]
        return bool(await self._acknowledged_script("set_push", keys, [pack_push(push)]))

    async def get_push_info(self, id_a: IdA) -> PushInfo | None:
        """GET of the push key."""
        value = await self.client.get(self._push_key(id_a))
        return None if value is None else unpack_push(_raw(value))

    async def delete_registration(self, id_a: IdA) -> bool:
        """DEL the three keys in one script (same slot)."""
        keys = [self._reg_key(id_a), self._exp_key(id_a), self._push_key(id_a)]
        return bool(await self._acknowledged_script("delete_registration", keys, []))

    async def delete_exposures(self, id_a: IdA) -> bool:
        """One script: drop the exposures hash and reset the risk fields."""
        default = RISK.pack(*_risk_fields(RiskState()))
        keys = [self._reg_key(id_a), self._exp_key(id_a)]
        return bool(await self._acknowledged_script("delete_exposures", keys, [default]))

    def _scan(self, pattern: str, count: int, type_: str | None = None) -> AsyncIterator[Any]:
        """SCAN MATCH; the cluster client scans every master in turn."""
        return self.client.scan_iter(match=pattern, count=count, _type=type_)

    async def count_registrations(self) -> int:
        """Exact count by SCAN MATCH over registration keys (every master on a cluster): O(n),
        for occasional metrics; nothing extra is maintained (a global counter would be a
        cross-slot key)."""
        total = 0
        async for _ in self._scan(_escape_glob(self.prefix) + "r{*", 1000, "string"):
            total += 1
        return total

    async def iter_exposed(self, batch: int = 1000) -> AsyncIterator[list[IdA]]:
        """SCAN MATCH over exposure keys (a key exists only while its hash is non-empty).

        SCAN may return a key twice; the retention caller only purges, which is idempotent.
        """
        page: list[IdA] = []
        async for key in self._scan(_escape_glob(self.prefix) + "x{*", batch):
            hex_id = key[len(self.prefix) + 2 : -1].decode()
            page.append(IdA(bytes.fromhex(hex_id)))
            if len(page) >= batch:
                yield page
                page = []
        if page:
            yield page

    # --- exposures and risk ------------------------------------------------------------
    async def add_exposures(
        self, id_a: IdA, report_id: str, scores: Sequence[tuple[int, float]]
    ) -> bool:
        """HSET ``<epoch>:<exposure tag>`` -> score if the registration exists
        (idempotent)."""
        args: list[Any] = []
        for epoch, score in scores:
            args += [f"{epoch}:{exposure_tag(report_id, epoch)}", repr(float(score))]
        keys = [self._reg_key(id_a), self._exp_key(id_a)]
        return bool(await self._acknowledged_script("add_exposures", keys, args))

    async def get_exposures(self, id_a: IdA) -> dict[int, float]:
        """HGETALL, summed per epoch."""
        totals: dict[int, float] = {}
        for field, score in (await self.client.hgetall(self._exp_key(id_a))).items():
            epoch = int(_raw(field).split(b":", 1)[0])
            totals[epoch] = totals.get(epoch, 0.0) + float(score)
        return totals

    async def set_risk(self, id_a: IdA, risk: RiskState) -> bool:
        """SETRANGE of the risk fields if the registration exists."""
        packed = RISK.pack(*_risk_fields(risk))
        return bool(await self._script("set_risk", [self._reg_key(id_a)], [packed]))

    async def purge_exposures(self, id_a: IdA, before_epoch: int) -> int:
        """One script over the (small) exposures hash."""
        return int(await self._script("purge_exposures", [self._exp_key(id_a)], [before_epoch]))

    # --- captchas ----------------------------------------------------------------------
    async def create_captcha(self, captcha: Captcha, lifetime: int) -> bool:
        """One script: HSET if absent, expiring in Redis a minute after its time."""
        args = [
            captcha.kind, captcha.answer, captcha.locale, captcha.expires, captcha.attempts,
            max(1, lifetime) + CAPTCHA_GRACE_SECONDS,
        ]  # fmt: skip
        key = self._captcha_key(captcha.id)
        return bool(await self._acknowledged_script("create_captcha", [key], args))

    async def get_captcha(self, captcha_id: str, now: int) -> Captcha | None:
        """One script: the fields unless expired."""
        reply = await self._script("get_captcha", [self._captcha_key(captcha_id)], [now])
        if not reply:
            return None
        fields = {_text(reply[i]): _text(reply[i + 1]) for i in range(0, len(reply), 2)}
        return Captcha(
            captcha_id, fields["k"], fields["a"], fields["l"], int(fields["e"]), int(fields["n"])
        )

    async def use_captcha(self, captcha_id: str, now: int) -> bool:
        """One script: DEL if unexpired."""
        key = self._captcha_key(captcha_id)
        return bool(await self._acknowledged_script("use_captcha", [key], [now]))

    async def fail_captcha(self, captcha_id: str, max_attempts: int) -> int:
        """One script: HINCRBY, DEL at the limit."""
        key = self._captcha_key(captcha_id)
        return int(await self._script("fail_captcha", [key], [max_attempts]))

    async def purge_captchas(self, now: int) -> int:
        """Nothing to do: every captcha key expires by itself."""
        return 0

    async def first_request(self, id_a: IdA, kind: int, time: int, ttl: int) -> bool:
        """SET NX EX of ``q{ID_A}<kind>:<time>`` (the registration's slot)."""
        key = f"{self.prefix}q{{{bytes(id_a).hex()}}}{kind}:{time}"
        return await self._acknowledged(key, "SET", key, b"", "NX", "EX", max(1, ttl)) is not None

    # --- shared limits -------------------------------------------------------------------
    def _budget_call(self, budgets: Sequence[Budget], now: float) -> tuple[list[str], list[Any]]:
        keys = [f"{self.prefix}b{{budgets}}{b.key}" for b in budgets]
        args: list[Any] = [int(now * 1000)]
        for budget in budgets:
            args += [budget.burst, int(budget.per_seconds * 1000)]
        return keys, args

    async def take_budget(self, budgets: Sequence[Budget], now: float) -> float:
        """One script over the buckets (all in the ``{budgets}`` slot)."""
        keys, args = self._budget_call(budgets, now)
        return int(await self._script("take_budget", keys, args)) / 1000

    async def refund_budget(self, budgets: Sequence[Budget], now: float) -> None:
        """One script over the buckets."""
        keys, args = self._budget_call(budgets, now)
        await self._script("refund_budget", keys, args)

    # --- report queue ----------------------------------------------------------------------
    async def enqueue_report(self, payload: bytes) -> str:
        """XADD to the next shard (round robin per process); durable as far as the server's
        persistence (AOF) and, with ``wait``, its replicas are."""
        shard = self._enqueue_turn % self.target.shards
        self._enqueue_turn += 1
        stream = self._stream(shard)
        entry_id = await self._acknowledged(stream, "XADD", stream, "*", "p", payload)
        return self._report_id(shard, entry_id)

    async def _autoclaim(
        self, shard: int, consumer: str, count: int, reclaim_after_ms: int
    ) -> list[QueuedReport]:
        """Take over entries idle longer than ``reclaim_after_ms`` (a crashed worker's)."""
        claimed: list[QueuedReport] = []
        start: bytes | str = "0-0"
        for _ in range(MAX_AUTOCLAIM_ROUNDS):
            reply = await self.client.xautoclaim(
                self._stream(shard),
                GROUP,
                consumer,
                min_idle_time=reclaim_after_ms,
                start_id=start,
                count=count - len(claimed),
            )
            claimed += self._reports(shard, reply[1])
            start = reply[0]
            if start in (b"0-0", "0-0") or len(claimed) >= count:
                break
        return claimed

    async def _read_new(
        self, shard: int, consumer: str, count: int, block: int | None
    ) -> list[QueuedReport]:
        reply = await self.client.xreadgroup(
            GROUP, consumer, {self._stream(shard): ">"}, count=count, block=block
        )
        claimed: list[QueuedReport] = []
        streams: list[tuple[Any, list[Any]]] = list(reply or [])  # type: ignore[arg-type]
        for _, entries in streams:
            claimed += self._reports(shard, entries)
        return claimed

    async def claim_reports(
        self, consumer: str, count: int, block_ms: int, reclaim_after_ms: int
    ) -> list[QueuedReport]:
        """XAUTOCLAIM first, then XREADGROUP of new entries, blocking only if none at all.

        Sharded: shard by shard (each is its own slot), starting one shard further at each
        call so that no shard starves; waiting is polling, every ``SHARD_POLL_SECONDS``.
        """
        shards = self.target.shards
        first = self._claim_turn % shards
        self._claim_turn += 1
        order = [(first + i) % shards for i in range(shards)]
        claimed: list[QueuedReport] = []
        for shard in order:
            claimed += await self._autoclaim(
                shard, consumer, count - len(claimed), reclaim_after_ms
            )
            if len(claimed) >= count:
                return claimed
        if shards == 1:
            # BLOCK 0 means forever in Redis: never block when reclaimed work is in hand or
            # the caller asked not to wait.
            block = block_ms if block_ms > 0 and not claimed else None
            return claimed + await self._read_new(0, consumer, count - len(claimed), block)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + block_ms / 1000
        while True:
            for shard in order:
                claimed += await self._read_new(shard, consumer, count - len(claimed), None)
                if len(claimed) >= count:
                    return claimed
            left = deadline - loop.time()
            if claimed or left <= 0:
                return claimed
            await asyncio.sleep(min(SHARD_POLL_SECONDS, left))

    async def ack_report(self, report_id: str) -> None:
        """One script on the stream (one slot): XACK, XDEL, and XTRIM MINID below what is
        still pending or undelivered, so a processed report's bytes leave the stream's
        memory too (XDEL alone only marks them deleted)."""
        shard, entry_id = self._split_report_id(report_id)
        await self._script("ack_report", [self._stream(shard)], [GROUP, entry_id])

    async def pending_reports(self) -> int:
        """XLEN summed over shards: acknowledged entries are deleted, so the rest is queued or
        in progress."""
        total = 0
        for shard in range(self.target.shards):
            total += int(await self.client.xlen(self._stream(shard)))
        return total

    def _reports(self, shard: int, entries: list[Any]) -> list[QueuedReport]:
        """Stream entries as reports; entries without a payload (deleted meanwhile) are
        skipped."""
        reports = []
        for entry_id, fields in entries:
            if fields and b"p" in fields:
                reports.append(QueuedReport(self._report_id(shard, entry_id), bytes(fields[b"p"])))
        return reports


def _raw(value: bytes | str) -> bytes:
    """A reply as bytes (the client never decodes; this narrows redis-py's reply type)."""
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str) -> str:
    """A reply as text."""
    return value.decode() if isinstance(value, bytes) else value
