"""The production store: Redis (standalone now, Redis Cluster later).

Every key of a registration carries the ID_A in a hash tag (``r{hex}`` for the registration,
``x{hex}`` for its exposures), so both land in the same cluster slot and no operation touches
two registrations. A registration is one string with a fixed binary layout (93 bytes) so that
it costs well under 250 bytes of Redis memory; read-modify-write steps are small Lua scripts
on that one string, one round trip each.
"""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError, ResponseError

from protocol.types import IdA, MacKey, TupleKey
from server.store.base import (
    CodeOutcome,
    CodeRecord,
    QueuedReport,
    Registration,
    RiskState,
    StatusOutcome,
    Store,
)
from server.store.resp import PipelinedRedis

# k_a, k_ea | last_status_epoch, last_status_time, tuples_until_epoch | at_risk, risk_level,
# last_contact_epoch, last_scoring_epoch. Little-endian, no padding; the Lua scripts below
# read and write the same offsets (Lua's are 1-based).
LAYOUT = struct.Struct("<32s32siqiBiii")
STATUS = struct.Struct("<iqi")
STATUS_OFFSET = 64
RISK = struct.Struct("<Biii")
RISK_OFFSET = STATUS_OFFSET + STATUS.size

STREAM = "reports"
GROUP = "workers"
MAX_AUTOCLAIM_ROUNDS = 4
"""XAUTOCLAIM scans at most 10 x count pending entries per call; a few calls suffice."""

RECORD_STATUS = f"""
local v = redis.call('GET', KEYS[1])
if not v then return 'unknown' end
local last_epoch, last_time, tuples_until = struct.unpack('<i4i8i4', v, {STATUS_OFFSET + 1})
local epoch, t = tonumber(ARGV[1]), tonumber(ARGV[2])
local gap, wanted = tonumber(ARGV[3]), tonumber(ARGV[4])
if epoch == last_epoch and t == last_time then return 'replayed' end
if gap > 0 and last_epoch ~= -1 and epoch - last_epoch < gap then return 'too_soon' end
if wanted > tuples_until then tuples_until = wanted end
redis.call('SETRANGE', KEYS[1], {STATUS_OFFSET}, struct.pack('<i4i8i4', epoch, t, tuples_until))
return 'accepted'
"""

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

# KEYS: code. ARGV: kind, issued_at, expires_at, org, test_date.
ADD_CODE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'k', ARGV[1], 'i', ARGV[2], 'e', ARGV[3], 'o', ARGV[4],
           'd', ARGV[5], 's', 'valid')
return 1
"""

# KEYS: code. ARGV[1]: now. Same order of checks as the SQLite store.
CONSUME_CODE = """
local f = redis.call('HMGET', KEYS[1], 's', 'e')
if not f[1] then return 'unknown' end
if f[1] == 'revoked' then return 'revoked' end
if f[1] == 'used' then return 'used' end
if tonumber(ARGV[1]) >= tonumber(f[2]) then return 'expired' end
redis.call('HSET', KEYS[1], 's', 'used')
return 'accepted'
"""

REVOKE_CODE = """
local s = redis.call('HGET', KEYS[1], 's')
if not s or s == 'used' then return 0 end
redis.call('HSET', KEYS[1], 's', 'revoked')
return 1
"""


def pack_registration(r: Registration) -> bytes:
    """The fixed binary layout of a registration."""
    return LAYOUT.pack(
        r.k_a.material,
        r.k_ea.material,
        r.last_status_epoch,
        r.last_status_time,
        r.tuples_until_epoch,
        *_risk_fields(r.risk),
    )


def unpack_registration(id_a: IdA, value: bytes) -> Registration:
    """Inverse of ``pack_registration``."""
    k_a, k_ea, status_epoch, status_time, until, at_risk, level, contact, scoring = LAYOUT.unpack(
        value
    )
    return Registration(
        id_a=id_a,
        k_a=MacKey(k_a),
        k_ea=TupleKey(k_ea),
        last_status_epoch=status_epoch,
        last_status_time=status_time,
        tuples_until_epoch=until,
        risk=RiskState(bool(at_risk), level, contact, scoring),
    )


def _risk_fields(risk: RiskState) -> tuple[int, int, int, int]:
    """The risk state in ``RISK`` order."""
    return int(risk.at_risk), risk.risk_level, risk.last_contact_epoch, risk.last_scoring_epoch


def _escape_glob(text: str) -> str:
    """Quote the characters SCAN MATCH treats as patterns."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


class RedisStore(Store):
    """Store in Redis through ``redis.asyncio`` (hiredis parser when installed)."""

    def __init__(self, url: str, prefix: str = "", **options: Any) -> None:
        self.url = url
        self.prefix = prefix
        self._options = options
        self._client: aioredis.Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._fast: PipelinedRedis | None = None

    # --- keys --------------------------------------------------------------------------
    def _reg_key(self, id_a: IdA) -> str:
        return f"{self.prefix}r{{{bytes(id_a).hex()}}}"

    def _exp_key(self, id_a: IdA) -> str:
        return f"{self.prefix}x{{{bytes(id_a).hex()}}}"

    def _code_key(self, code: str) -> str:
        return f"{self.prefix}c:{code}"

    @property
    def _stream(self) -> str:
        return f"{self.prefix}{STREAM}"

    @property
    def client(self) -> aioredis.Redis:
        """The connected client."""
        if self._client is None:
            raise RuntimeError("RedisStore is not open")
        return self._client

    async def _script(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """EVALSHA a registered script (loaded on first use by redis-py)."""
        return await self._scripts[name](keys=keys, args=args, client=self.client)

    # --- lifecycle ---------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, register the scripts and create the consumer group; idempotent."""
        if self._client is not None:
            return
        client = aioredis.Redis.from_url(self.url, decode_responses=False, **self._options)
        self._client = client
        self._scripts = {
            name: client.register_script(source)
            for name, source in {
                "record_status": RECORD_STATUS,
                "set_risk": SET_RISK,
                "delete_exposures": DELETE_EXPOSURES,
                "add_exposures": ADD_EXPOSURES,
                "purge_exposures": PURGE_EXPOSURES,
                "add_code": ADD_CODE,
                "consume_code": CONSUME_CODE,
                "revoke_code": REVOKE_CODE,
            }.items()
        }
        if self.url.startswith("redis://"):
            # The hot path (registration lookup, status, registration) is auto-pipelined.
            self._fast = PipelinedRedis(self.url)
            await client.script_load(RECORD_STATUS)
        try:
            # From id 0, so reports queued before the group existed are still delivered.
            await client.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                await self.close()
                raise
        except BaseException:
            await self.close()
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
        """True if Redis answers PING."""
        try:
            return bool(await self.client.ping())
        except (RedisError, OSError, RuntimeError):
            return False

    # --- registrations -----------------------------------------------------------------
    async def create_registration(self, registration: Registration) -> bool:
        """SET NX of the packed registration."""
        key = self._reg_key(registration.id_a)
        value = pack_registration(registration)
        if self._fast is not None:
            return await self._fast.execute("SET", key, value, "NX") is not None
        return bool(await self.client.set(key, value, nx=True))

    async def get_registration(self, id_a: IdA) -> Registration | None:
        """GET and unpack."""
        key = self._reg_key(id_a)
        value = await (self._fast.execute("GET", key) if self._fast else self.client.get(key))
        return None if value is None else unpack_registration(id_a, _raw(value))

    async def record_status(
        self, id_a: IdA, epoch: int, time: int, min_gap_epochs: int, tuples_until_epoch: int
    ) -> StatusOutcome:
        """One script: replay, rate limit, then SETRANGE of the status fields."""
        keys = [self._reg_key(id_a)]
        args = [epoch, time, min_gap_epochs, tuples_until_epoch]
        if self._fast is None:
            result = await self._script("record_status", keys, args)
        else:
            sha = self._scripts["record_status"].sha
            try:
                result = await self._fast.execute("EVALSHA", sha, 1, *keys, *args)
            except ResponseError as exc:  # script cache flushed (Redis restarted): reload
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                result = await self._script("record_status", keys, args)
        return StatusOutcome(result.decode())

    async def delete_registration(self, id_a: IdA) -> bool:
        """DEL both keys in one MULTI (same slot)."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self._reg_key(id_a))
            pipe.delete(self._exp_key(id_a))
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def delete_exposures(self, id_a: IdA) -> bool:
        """One script: drop the exposures hash and reset the risk fields."""
        default = RISK.pack(*_risk_fields(RiskState()))
        keys = [self._reg_key(id_a), self._exp_key(id_a)]
        return bool(await self._script("delete_exposures", keys, [default]))

    async def count_registrations(self) -> int:
        """Exact count by SCAN MATCH over registration keys: O(n), for occasional metrics;
        nothing extra is maintained (a global counter would be a cross-slot key)."""
        total = 0
        pattern = _escape_glob(self.prefix) + "r{*"
        async for _ in self.client.scan_iter(match=pattern, count=1000, _type="string"):
            total += 1
        return total

    async def iter_exposed(self, batch: int = 1000) -> AsyncIterator[list[IdA]]:
        """SCAN MATCH over exposure keys (a key exists only while its hash is non-empty).

        SCAN may return a key twice; the retention caller only purges, which is idempotent.
        """
        pattern = _escape_glob(self.prefix) + "x{*"
        page: list[IdA] = []
        async for key in self.client.scan_iter(match=pattern, count=batch):
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
        """HSET ``<epoch>:<report_id>`` -> score if the registration exists (idempotent)."""
        args: list[Any] = []
        for epoch, score in scores:
            args += [f"{epoch}:{report_id}", repr(float(score))]
        keys = [self._reg_key(id_a), self._exp_key(id_a)]
        return bool(await self._script("add_exposures", keys, args))

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

    # --- report queue ------------------------------------------------------------------
    async def enqueue_report(self, payload: bytes) -> str:
        """XADD to the stream; durable as far as the server's persistence (AOF) is."""
        report_id = await self.client.xadd(self._stream, {"p": payload})
        return _text(report_id)

    async def _autoclaim(
        self, consumer: str, count: int, reclaim_after_ms: int
    ) -> list[QueuedReport]:
        """Take over entries idle longer than ``reclaim_after_ms`` (a crashed worker's)."""
        claimed: list[QueuedReport] = []
        start: bytes | str = "0-0"
        for _ in range(MAX_AUTOCLAIM_ROUNDS):
            reply = await self.client.xautoclaim(
                self._stream,
                GROUP,
                consumer,
                min_idle_time=reclaim_after_ms,
                start_id=start,
                count=count - len(claimed),
            )
            claimed += _reports(reply[1])
            start = reply[0]
            if start in (b"0-0", "0-0") or len(claimed) >= count:
                break
        return claimed

    async def claim_reports(
        self, consumer: str, count: int, block_ms: int, reclaim_after_ms: int
    ) -> list[QueuedReport]:
        """XAUTOCLAIM first, then XREADGROUP of new entries, blocking only if none at all."""
        claimed = await self._autoclaim(consumer, count, reclaim_after_ms)
        if len(claimed) >= count:
            return claimed
        # BLOCK 0 means forever in Redis: never block when reclaimed work is in hand or the
        # caller asked not to wait.
        block = block_ms if block_ms > 0 and not claimed else None
        reply = await self.client.xreadgroup(
            GROUP, consumer, {self._stream: ">"}, count=count - len(claimed), block=block
        )
        streams: list[Any] = list(reply or [])
        for _, entries in streams:
            claimed += _reports(entries)
        return claimed

    async def ack_report(self, report_id: str) -> None:
        """XACK and XDEL in one MULTI: removed from the group and from the stream."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self._stream, GROUP, report_id)
            pipe.xdel(self._stream, report_id)
            await pipe.execute()

    async def pending_reports(self) -> int:
        """XLEN: acknowledged entries are deleted, so the rest is queued or in progress."""
        return int(await self.client.xlen(self._stream))

    # --- submission codes --------------------------------------------------------------
    async def add_codes(self, codes: Sequence[CodeRecord]) -> int:
        """One script call per code, all in one pipeline (codes hash to different slots)."""
        if not codes:
            return 0
        async with self.client.pipeline(transaction=False) as pipe:
            for c in codes:
                await self._scripts["add_code"](
                    keys=[self._code_key(c.code)],
                    args=[c.kind, c.issued_at, c.expires_at, c.org, c.test_date],
                    client=pipe,
                )
            results = await pipe.execute()
        return sum(int(r) for r in results)

    async def get_code(self, code: str) -> tuple[CodeRecord, str] | None:
        """HGETALL of the code's hash."""
        reply = await self.client.hgetall(self._code_key(code))
        if not reply:
            return None
        fields = {_text(name): _text(value) for name, value in reply.items()}
        record = CodeRecord(
            code=code,
            kind=fields["k"],
            issued_at=int(fields["i"]),
            expires_at=int(fields["e"]),
            org=fields["o"],
            test_date=fields["d"],
        )
        return record, fields["s"]

    async def consume_code(self, code: str, now: int) -> CodeOutcome:
        """One script on the code's key: exactly one concurrent caller sees 'accepted'."""
        result = await self._script("consume_code", [self._code_key(code)], [now])
        return CodeOutcome(result.decode())

    async def revoke_code(self, code: str) -> bool:
        """Revoke a code that is not used; revoking a revoked code again is True."""
        return bool(await self._script("revoke_code", [self._code_key(code)], []))


def _raw(value: bytes | str) -> bytes:
    """A reply as bytes (the client never decodes; this narrows redis-py's reply type)."""
    return value if isinstance(value, bytes) else value.encode()


def _text(value: bytes | str) -> str:
    """A reply as text."""
    return value.decode() if isinstance(value, bytes) else value


def _reports(entries: list[Any]) -> list[QueuedReport]:
    """Stream entries as reports; entries without a payload (deleted meanwhile) are skipped."""
    reports = []
    for entry_id, fields in entries:
        if fields and b"p" in fields:
            reports.append(QueuedReport(bytes(entry_id).decode(), bytes(fields[b"p"])))
    return reports
