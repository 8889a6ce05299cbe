"""The board's domain, independent of HTTP: events, the log and its live feed, transfer
requests, and the territory's figures from SI-VIC and the bed service."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kit.audit import Actor
from kit.http import BadRequest, Conflict, Forbidden, NotFound
from samu.access import Access
from samu.links import CountsSource, TensionSource, Unavailable
from samu.live import Broadcaster
from samu.model import Entry, Event, EventStatus, Transfer, TransferStatus, may_move
from samu.relay import RedisRelay
from samu.scopes import (
    ScopeError,
    departements,
    may_address,
    may_see,
    parse_scope,
    region_of,
    visible_targets,
)
from samu.store import PAGE, NewEntry, SamuStore

TEXT_MAX = 4000
TITLE_MAX = 200


@dataclass(frozen=True, slots=True)
class Board:
    """What a board page shows of an event: the event, its territory's figures (None: not
    available) and the scopes its viewer may write to."""

    event: Event
    counts: dict[str, object] | None
    tension: dict[str, object] | None
    targets: list[str]


def iso_utc(moment: datetime) -> str:
    """``2026-12-03T09:30:00Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_json(entry: Entry) -> dict[str, object]:
    """An entry as the API and the live feed give it."""
    return {
        "id": entry.id,
        "event": entry.event_id,
        "client_id": entry.client_id,
        "at": iso_utc(entry.at),
        "author": entry.author,
        "from": entry.sender_scope,
        "to": entry.target_scope,
        "text": entry.text,
        "annotates": entry.annotates,
    }


def event_json(event: Event) -> dict[str, object]:
    """An event as the API gives it."""
    return {
        "id": event.id,
        "title": event.title,
        "kind": event.kind,
        "departement": event.departement,
        "region": region_of(event.departement),
        "lat": event.lat,
        "lon": event.lon,
        "status": event.status.value,
        "opened_by": event.opened_by,
        "opened_at": iso_utc(event.opened_at),
    }


def transfer_json(t: Transfer) -> dict[str, object]:
    """A transfer request as the API gives it (names a patient: reads are audited)."""
    return {
        "id": t.id,
        "event": t.event_id,
        "patient": t.patient,
        "from_finess": t.from_finess,
        "to_finess": t.to_finess,
        "departement": t.departement,
        "reason": t.reason,
        "status": t.status.value,
        "requested_by": t.requested_by,
        "created_at": iso_utc(t.created_at),
        "updated_at": iso_utc(t.updated_at),
    }


def client_id_of(value: object) -> str:
    """A sender's entry id: a UUID, in its canonical form (a new one if none is given)."""
    if value is None or value == "":
        return str(uuid.uuid4())
    if not isinstance(value, str):
        raise BadRequest("client_id must be a UUID", "bad_client_id")
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise BadRequest("client_id must be a UUID", "bad_client_id") from None


def _finess(value: str, name: str) -> str:
    value = value.strip()
    if not (len(value) == 9 and value[:2].isalnum() and value[2:].isdigit()):
        raise BadRequest(f"{name} must be a FINESS number (9 characters)", "bad_finess")
    return value


class SamuService:
    """The board."""

    def __init__(
        self,
        store: SamuStore,
        *,
        counts: CountsSource | None = None,
        tension: TensionSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.live = Broadcaster()
        self.relay: RedisRelay | None = None
        """Set (``SAMU_REDIS_URL``), new entries reach the streams of every process."""
        self.counts_source: CountsSource = counts or Unavailable()
        self.tension_source: TensionSource = tension or Unavailable()
        self.clock = clock

    async def open(self) -> None:
        """Migrate the database; subscribe to the other processes' entries (if relayed)."""
        await self.store.open()
        if self.relay is not None:
            await self.relay.start()

    async def close(self) -> None:
        """End the live feeds, release the database."""
        self.live.close()
        if self.relay is not None:
            await self.relay.stop()
        await self.store.close()

    def now(self) -> datetime:
        """The clock's time, in UTC."""
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- events ------------------------------------------------------------------------------
    async def open_event(
        self, access: Access, actor: Actor, title: str, kind: str, departement: str,
        lat: float, lon: float,
    ) -> Event:  # fmt: skip
        """Open an event at a map position in a département."""
        title, kind = title.strip(), kind.strip() or "exceptional"
        if not title or len(title) > TITLE_MAX:
            raise BadRequest(f"the title is 1 to {TITLE_MAX} characters", "bad_title")
        if len(kind) > 64:
            raise BadRequest("the kind is at most 64 characters", "bad_kind")
        if departement not in departements():
            raise BadRequest(f"no département {departement}", "bad_departement")
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise BadRequest("lat must be within ±90 and lon within ±180", "bad_position")
        if not access.may_open_event_in(departement):
            raise Forbidden("you may not open an event there")
        return await self.store.add_event(title, kind, departement, lat, lon, actor, self.now())

    async def close_event(self, access: Access, actor: Actor, event_id: int) -> Event:
        """Close an event (its log stays readable, nothing more can be posted)."""
        event = await self.event(access, event_id)
        if not access.may_open_event_in(event.departement):
            raise Forbidden("you may not close this event")
        await self.store.set_event_status(event_id, EventStatus.CLOSED, actor)
        return await self.event(access, event_id)

    async def events(self, access: Access) -> list[Event]:
        """Every event (open ones first): their existence and place are not secret to the
        board's users, their messages are."""
        if not access.may_read_board:
            raise Forbidden("the board is not open to your role")
        found = await self.store.events()
        return sorted(found, key=lambda e: (e.status != EventStatus.OPEN, -e.id))

    async def event(self, access: Access, event_id: int) -> Event:
        """One event."""
        if not access.may_read_board:
            raise Forbidden("the board is not open to your role")
        found = await self.store.event(event_id)
        if found is None:
            raise NotFound(f"no event {event_id}")
        return found

    # --- the log -----------------------------------------------------------------------------
    def targets_of(self, access: Access) -> list[str]:
        """The scopes ``access`` may address, its own first, then those containing it."""
        own = access.scope
        if own is None or not access.may_post:
            return []
        return [str(s) for s in own.ancestry()]

    async def post(
        self,
        access: Access,
        actor: Actor,
        event_id: int,
        text: str,
        target: str | None = None,
        client_id: object = None,
        annotates: int | None = None,
    ) -> tuple[Entry, bool]:
        """Append a message (or an annotation of an earlier entry) to an event's log and push
        it live; (the entry, whether it is new). A resend of the same ``client_id`` stores
        nothing and pushes nothing: the entry stored first is returned."""
        own = access.scope
        if own is None or not access.may_post:
            raise Forbidden("you may not post on the board")
        text = text.strip()
        if not text or len(text) > TEXT_MAX:
            raise BadRequest(f"a message is 1 to {TEXT_MAX} characters", "bad_text")
        try:
            to = parse_scope(target) if target else own
        except ScopeError as exc:
            raise BadRequest(str(exc), "bad_scope") from None
        if not may_address(own, to):
            raise Forbidden(f"{own} may not write to {to}")
        key = client_id_of(client_id)
        event = await self.event(access, event_id)
        if annotates is not None:
            original = await self.store.entry(annotates)
            if (
                original is None
                or original.event_id != event_id
                or not may_see(
                    own, parse_scope(original.target_scope), parse_scope(original.sender_scope)
                )
            ):
                raise NotFound(f"no entry {annotates} in this event")
        item = NewEntry(event_id, key, actor.name, str(own), str(to), text, annotates)
        if event.status != EventStatus.OPEN:
            existing = await self.store.entry_by_client_id(key)
            if existing is not None and existing.event_id == event_id:
                return existing, False
            raise Conflict("the event is closed", "event_closed")
        entry, new = await self.store.append(item, self.now())
        if not new and (entry.event_id != event_id or entry.author != actor.name):
            raise Conflict("this client_id names another entry", "client_id_taken")
        if new and self.relay is not None:
            await self.relay.send(entry)
        elif new:
            self.live.publish(entry)
        return entry, new

    async def log(
        self, access: Access, event_id: int, after_id: int = 0, limit: int | None = None
    ) -> list[Entry]:
        """An event's log as ``access`` may see it, oldest first, after ``after_id``: all of
        it (read ``PAGE`` entries at a time), or its first ``limit`` entries (one read: page
        on with the last one's id)."""
        if limit is not None:
            return await self._log_page(access, event_id, after_id, limit)
        return [e async for page in self.log_pages(access, event_id, after_id) for e in page]

    async def _log_page(
        self, access: Access, event_id: int, after_id: int, limit: int
    ) -> list[Entry]:
        await self.event(access, event_id)
        own = access.scope
        assert own is not None
        return await self.store.entries(event_id, visible_targets(own), str(own), after_id, limit)

    async def log_pages(
        self, access: Access, event_id: int, after_id: int = 0, limit: int = PAGE
    ) -> AsyncIterator[list[Entry]]:
        """An event's whole log after ``after_id`` as ``access`` may see it, page by page
        (oldest first) until a page comes back empty."""
        while page := await self._log_page(access, event_id, after_id, limit):
            yield page
            after_id = page[-1].id

    async def log_latest(
        self, access: Access, event_id: int, count: int, before_id: int | None = None
    ) -> tuple[list[Entry], bool]:
        """The last ``count`` entries ``access`` may see (before ``before_id``), oldest first,
        and whether there are earlier ones."""
        await self.event(access, event_id)
        own = access.scope
        assert own is not None
        found = await self.store.entries(
            event_id, visible_targets(own), str(own), limit=count + 1, before_id=before_id,
            newest=True,
        )  # fmt: skip
        return found[-count:] if count else [], len(found) > count

    # --- transfers ---------------------------------------------------------------------------
    async def request_transfer(
        self, access: Access, actor: Actor, patient: str, from_finess: str, to_finess: str,
        departement: str, reason: str = "", event_id: int | None = None,
    ) -> Transfer:  # fmt: skip
        """A new inter-hospital transfer request."""
        patient, reason = patient.strip(), reason.strip()
        if not patient or len(patient) > 200:
            raise BadRequest("the patient is named in 1 to 200 characters", "bad_patient")
        if len(reason) > 500:
            raise BadRequest("the reason is at most 500 characters", "bad_reason")
        origin, destination = _finess(from_finess, "from_finess"), _finess(to_finess, "to_finess")
        if origin == destination:
            raise BadRequest("a transfer goes to another establishment", "same_establishment")
        if departement not in departements():
            raise BadRequest(f"no département {departement}", "bad_departement")
        if not access.may_request_transfer(departement):
            raise Forbidden("you may not request a transfer there")
        if event_id is not None:
            await self.event(access, event_id)
        return await self.store.add_transfer(
            event_id, patient, origin, destination, departement, reason, actor, self.now()
        )

    async def transfers(self, access: Access, actor: Actor) -> list[Transfer]:
        """The transfer requests ``access`` may read, newest first; the read is audited."""
        if access.finess is not None:
            found = await self.store.transfers(finess=access.finess)
        else:
            own = access.scope
            if own is None:
                raise Forbidden("transfers are not open to your role")
            deps = None if own.level == "national" else [
                d for d in departements() if own.contains(parse_scope(f"samu:{d}"))
            ]  # fmt: skip
            found = await self.store.transfers(departements=deps)
        shown = [
            t for t in found
            if access.may_read_transfer(t.departement, t.from_finess, t.to_finess)
        ]  # fmt: skip
        await self.store.read_audited(shown, actor)
        return shown

    async def transfer(self, access: Access, actor: Actor, transfer_id: int) -> Transfer:
        """One transfer request; the read is audited."""
        found = await self.store.transfer(transfer_id)
        if found is None or not access.may_read_transfer(
            found.departement, found.from_finess, found.to_finess
        ):
            raise NotFound(f"no transfer {transfer_id}")
        await self.store.read_audited([found], actor)
        return found

    async def move_transfer(
        self, access: Access, actor: Actor, transfer_id: int, status: str
    ) -> Transfer:
        """Move a transfer request to ``status`` (allowed moves only, ``samu.model``)."""
        try:
            new = TransferStatus(status)
        except ValueError:
            raise BadRequest("unknown status", "bad_status") from None
        found = await self.store.transfer(transfer_id)
        if found is None or not access.may_read_transfer(
            found.departement, found.from_finess, found.to_finess
        ):
            raise NotFound(f"no transfer {transfer_id}")
        answer = new in (TransferStatus.ACCEPTED, TransferStatus.REFUSED)
        if not access.may_move_transfer(
            found.departement, found.from_finess, found.to_finess, answer
        ):
            raise Forbidden("you may not change this transfer")
        if not may_move(found.status, new):
            raise Conflict(f"a transfer {found.status.value} cannot become {new.value}", "bad_move")
        if not await self.store.move_transfer(transfer_id, found.status, new, actor, self.now()):
            raise Conflict("the transfer was changed meanwhile; read it again", "moved")
        return await self.transfer(access, actor, transfer_id)

    # --- the board ---------------------------------------------------------------------------
    async def board(self, access: Access, event_id: int) -> Board:
        """An event with its territory's counts (SI-VIC) and bed tension (beds), each None
        when not available; both asked at once."""
        event = await self.event(access, event_id)
        counts, tension = await asyncio.gather(
            self.counts_source.counts(event.departement),
            self.tension_source.tension(event.departement),
        )
        return Board(event, counts, tension, self.targets_of(access))
