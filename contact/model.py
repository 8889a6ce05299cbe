"""Contact Covid's records: small frozen values read from and written to the store."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from contact.rules import Level, Status, record_number


class OpenedBy(StrEnum):
    """Who opened a case: a doctor (level 1), a platform, the ARS, or the SI-DEP feed."""

    DOCTOR = "doctor"
    CPAM = "cpam"
    ARS = "ars"
    AUTO = "auto"


class ContactKind(StrEnum):
    """A contact of the case, or a person co-exposed at the same place (decree of Jan 2021)."""

    CONTACT = "contact"
    CO_EXPOSED = "co_exposed"


class PrescriptionKind(StrEnum):
    """What a contact's registration prescribes."""

    PCR_TEST = "pcr_test"
    MASKS = "masks"
    SICK_LEAVE = "sick_leave"


class Outcome(StrEnum):
    """How a call to a contact ended."""

    REACHED = "reached"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    WRONG_NUMBER = "wrong_number"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class PersonInput:
    """A person as a form, the API or the SI-DEP feed gives them."""

    last_name: str
    first_name: str
    birth_date: date | None = None
    sex: str = "U"
    nir: str | None = None
    phone: str | None = None
    email: str | None = None
    address: str = ""
    postcode: str = ""
    department: str = ""


@dataclass(frozen=True, slots=True)
class Person:
    """One person, known once across cases. Identifying fields are empty once purged."""

    id: int
    last_name: str
    first_name: str
    birth_date: date | None
    sex: str
    nir: str | None
    phone: str | None
    email: str | None
    address: str
    postcode: str
    department: str
    pseudonym: str | None
    collected_at: datetime
    purged_at: datetime | None

    @property
    def name(self) -> str:
        """``LAST First`` as agents read it."""
        return f"{self.last_name.upper()} {self.first_name}".strip()


@dataclass(frozen=True, slots=True)
class Exposure:
    """A setting the case was in: school, care home, travel..."""

    kind: str
    place: str
    setting: str
    day: date


@dataclass(frozen=True, slots=True)
class Case:
    """A patient-zero record."""

    id: int
    person_id: int
    opened_by: OpenedBy
    doctor: str | None
    level: Level
    status: Status
    diagnosis_date: date
    onset_date: date | None
    sampled_date: date | None
    consent_disclose: bool
    department: str
    opened_at: datetime
    sla_due_at: datetime
    source_result: str | None
    result_withdrawn: bool
    assigned_to: str | None = None
    """The agent whose task list holds the case (None: the platform's queue)."""

    @property
    def record(self) -> str:
        """The record number (``CC00000042``)."""
        return record_number(self.id)


@dataclass(frozen=True, slots=True)
class Link:
    """A person listed as a contact (or co-exposed) of a case."""

    id: int
    case_id: int
    person_id: int
    kind: ContactKind
    relation: str
    household: bool
    last_contact: date
    isolation_until: date
    test_on: date
    doctor_will_call: bool
    notified_at: datetime | None
    channel: str | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Call:
    """One call to a contact and its outcome."""

    id: int
    link_id: int
    at: datetime
    actor: str
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class Prescription:
    """A single-use prescription of a contact (or of the case)."""

    id: int
    case_id: int
    link_id: int | None
    person_id: int
    kind: PrescriptionKind
    code: str
    issued_at: datetime
    consumed_at: datetime | None
    consumed_by: str | None


@dataclass(frozen=True, slots=True)
class Pending:
    """A positive result from SI-DEP waiting for a doctor's case (or the delay)."""

    id: int
    lab: str
    result_id: str
    received_at: datetime
    due_at: datetime
    status: str
    case_id: int | None
