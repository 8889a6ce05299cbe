"""SI-VIC's records: small frozen values and the rules of a status change, no I/O.

A *patient* of an *event* (an attack, an exceptional health situation, the COVID epidemic) is
registered by a hospital with an identity and a care episode only, never medical data
(``health.md`` §4.4): the establishment (FINESS), the kind of unit, a status with its date, and
for COVID whether it is the reason of the stay or incidental. Each change of the episode is kept
(the history), with what it means for the open-data counts (``Movement``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


def N_(message: str) -> str:
    """Mark ``message`` for the French catalog; the pages translate it where they show it."""
    return message


class EventKind(StrEnum):
    """What SI-VIC is triggered for."""

    ATTACK = "attack"
    HEALTH_SITUATION = "health_situation"
    EPIDEMIC = "epidemic"

    @property
    def label(self) -> str:
        """The English name, a message id of the pages."""
        return {
            "attack": N_("Attack"),
            "health_situation": N_("Exceptional health situation"),
            "epidemic": N_("Epidemic"),
        }[self.value]


class Sex(StrEnum):
    """As hospitals declare it: M, F, or U (unknown)."""

    MALE = "M"
    FEMALE = "F"
    UNKNOWN = "U"

    @property
    def sexe(self) -> int:
        """The code of SpF's ``sexe`` column (1 men, 2 women; 0, everyone, is the total)."""
        return {"M": 1, "F": 2, "U": 0}[self.value]


class UnitKind(StrEnum):
    """The kind of unit a patient lies in: the split of SpF's ``hosp``."""

    CONV = "conv"
    """Conventional hospitalisation (``HospConv``)."""
    CRIT = "crit"
    """Critical care: réanimation, intensive or continuous care (``rea``)."""
    SSR_USLD = "ssr_usld"
    """Follow-up and rehabilitation, long-term care (``SSR_USLD``)."""
    OTHER = "other"
    """Anything else (``autres``): psychiatry, emergency short stay..."""

    @property
    def label(self) -> str:
        return {
            "conv": N_("Conventional"),
            "crit": N_("Critical care"),
            "ssr_usld": N_("Follow-up / long-term care"),
            "other": N_("Other"),
        }[self.value]


class Status(StrEnum):
    """Where the care episode stands."""

    HOSPITALISED = "hospitalised"
    HOME = "home"
    DECEASED = "deceased"
    TRANSFERRED = "transferred"
    """Left for another hospital: counted nowhere until that hospital registers them."""

    @property
    def label(self) -> str:
        return {
            "hospitalised": N_("Hospitalised"),
            "home": N_("Returned home"),
            "deceased": N_("Deceased"),
            "transferred": N_("Transferred"),
        }[self.value]


class Covid(StrEnum):
    """COVID as the reason of the stay, or found incidentally (separated from January 2021)."""

    FOR = "for"
    WITH = "with"


class Source(StrEnum):
    """How a change came in."""

    FILE = "file"
    FORM = "form"
    API = "api"


AGE_CLASSES = ("09", "19", "29", "39", "49", "59", "69", "79", "89", "90")
"""SpF's ``cl_age90`` classes: the class is named by its upper bound (``09`` is 0-9 years,
``89`` is 80-89), ``90`` is 90 and over; ``0`` is everyone."""


def age_in_years(birth: date, on: date) -> int:
    """Whole years between ``birth`` and ``on`` (0 for a birth date after ``on``)."""
    years = on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
    return max(0, years)


def age_class(birth: date, on: date) -> str:
    """The ``cl_age90`` class of a person born on ``birth``, on the day ``on``."""
    years = age_in_years(birth, on)
    return "90" if years >= 90 else f"{years // 10}9"


@dataclass(frozen=True, slots=True)
class Event:
    """An event SI-VIC is open for."""

    id: int
    kind: EventKind
    name: str
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Episode:
    """A patient's state: where, in what kind of unit, what status since when, why."""

    finess: str
    dep: str
    unit: UnitKind
    status: Status
    status_date: date
    covid: Covid


@dataclass(frozen=True, slots=True)
class Movement:
    """What a change of episode adds to the counts of its day (``incid_*`` of SpF's files,
    and the cumulative ``rad`` and ``dc``)."""

    admitted: bool
    """A new hospitalisation (not the arrival of a transferred patient)."""
    to_critical: bool
    """A new entry into critical care (not a transfer from one critical-care unit to another)."""
    to_home: bool
    to_death: bool

    @property
    def any(self) -> bool:
        return self.admitted or self.to_critical or self.to_home or self.to_death

    @property
    def labels(self) -> list[str]:
        """What the change counts as, in English (message ids of the pages)."""
        names = (
            (self.admitted, N_("new hospitalisation")),
            (self.to_critical, N_("entry into critical care")),
            (self.to_home, N_("return home")),
            (self.to_death, N_("death")),
        )
        return [label for flag, label in names if flag]


def movement(previous: Episode | None, new: Episode) -> Movement:
    """What changing from ``previous`` (None: a new patient) to ``new`` counts.

    A transfer keeps one patient: arriving from another hospital (``transferred`` before) is
    not a new hospitalisation, nor a new entry into critical care if they were in critical care
    when they left."""
    return day_movement(previous, [new])


def _in_care(episode: Episode | None) -> bool:
    """Lying in a hospital (or leaving one for another: still in care)."""
    return episode is not None and episode.status in (Status.HOSPITALISED, Status.TRANSFERRED)


def day_movement(before: Episode | None, day: Sequence[Episode]) -> Movement:
    """What a patient's states of one day (``day``, in the order received, the last one where
    the day ends) count against their last state of an earlier day (``before``; None: none).

    Each movement counts at most once a day, so that a correction replaces rather than adds:
    a new hospitalisation if they were in care at some point of the day and not before; an
    entry into critical care if they were in critical care at some point of the day and not
    before; a return home or a death if the day *ends* so (a "deceased" corrected the same day
    is no death) and did not start so."""
    assert day, "a day has at least one state"
    end = day[-1]
    was_critical = _in_care(before) and before is not None and before.unit == UnitKind.CRIT
    start = before.status if before else None
    return Movement(
        admitted=not _in_care(before) and any(_in_care(e) for e in day),
        to_critical=not was_critical and any(_in_care(e) and e.unit == UnitKind.CRIT for e in day),
        to_home=end.status == Status.HOME and start != Status.HOME,
        to_death=end.status == Status.DECEASED and start != Status.DECEASED,
    )


@dataclass(frozen=True, slots=True)
class Identity:
    """Who the patient is, as far as the hospital gives it: an INS (NIR), the hospital's own
    patient number, and/or names with the birth date (the normalised identity)."""

    birth_date: date
    sex: Sex
    ins: str | None = None
    patient_ref: str | None = None
    last_name: str | None = None
    first_name: str | None = None


@dataclass(frozen=True, slots=True)
class Registration:
    """A patient's current state as a hospital declares it (a file line, a form, a JSON body)."""

    identity: Identity
    episode: Episode


@dataclass(frozen=True, slots=True)
class Patient:
    """A registered patient with their current episode."""

    id: int
    event_id: int
    identity: Identity
    episode: Episode
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change of a patient's episode."""

    id: int
    patient_id: int
    episode: Episode
    movement: Movement
    recorded_at: datetime
    source: str
    actor: str


class Outcome(StrEnum):
    """What a registration did."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    REFUSED = "refused"


def decide(current: Episode | None, new: Episode) -> tuple[Outcome, str]:
    """Whether ``new`` creates, changes or leaves the patient's ``current`` episode, or is
    refused, and why (pure). The same line twice changes nothing; a line older than the state
    already recorded is refused; an establishment saying "transferred" for a patient who has
    already arrived at another one changes nothing (the arrival is the newer news)."""
    if current is None:
        return Outcome.CREATED, ""
    if new == current:
        return Outcome.UNCHANGED, "same state"
    if new.status_date < current.status_date:
        return Outcome.REFUSED, f"older than the recorded state ({current.status_date})"
    if new.status == Status.TRANSFERRED and new.finess != current.finess:
        return Outcome.UNCHANGED, "already arrived at another establishment"
    return Outcome.UPDATED, ""
