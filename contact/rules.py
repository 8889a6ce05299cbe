"""Contact Covid's rules, pure (no I/O, no clock it is not given): contagious window,
isolation end, levels and the status workflow, the level-2 deadline, clusters, the record
number, and how one person is recognised across cases.

Sources (``../shared/docs/health.md`` 3.4): contacts are listed "from 48 h before symptom
onset"; level 2 takes over "within 24 h" of the doctor's entry; "contact" means contact with
the patient zero during the contagious period, at most 14 days before the diagnosis; a PCR
test is advised 7 days after the last contact.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import IntEnum, StrEnum

from kit.identity import is_valid_nir, normalise_name

# --- levels and the status workflow ---------------------------------------------------------------


class Level(IntEnum):
    """Who works a case: 1 the doctor, 2 the health-insurance platform, 3 the ARS."""

    DOCTOR = 1
    CPAM = 2
    ARS = 3


class Status(StrEnum):
    """A case's lifecycle (decree 2020-551 art. 5 II names these three)."""

    INITIALISED = "initialised"
    VALIDATED = "validated"
    CLOSED = "closed"


TRANSITIONS: dict[Status, frozenset[Status]] = {
    Status.INITIALISED: frozenset({Status.VALIDATED, Status.CLOSED}),
    Status.VALIDATED: frozenset({Status.CLOSED}),
    Status.CLOSED: frozenset(),
}
"""The allowed moves: a record is validated once its contact list is complete, then closed;
an initialised record may be closed directly (a withdrawn result, a duplicate)."""


class TransitionError(ValueError):
    """A move the workflow does not allow."""


def check_transition(current: Status, target: Status) -> None:
    """Raise ``TransitionError`` unless ``current`` may move to ``target``."""
    if target not in TRANSITIONS[current]:
        raise TransitionError(f"a {current.value} case cannot become {target.value}")


def check_level_change(current: Level, target: Level, status: Status) -> None:
    """Cases go up, one or more levels (1 -> 2 -> 3), never down, and not once closed."""
    if status is Status.CLOSED:
        raise TransitionError("a closed case keeps its level")
    if target <= current:
        raise TransitionError(f"a level-{int(current)} case cannot go to level {int(target)}")


# --- time rules -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimeRules:
    """The configurable durations (settings ``CONTACT_*``), with their defaults' sources.

    - ``symptomatic_before``: 48 h before symptom onset (health.md 3.4, CNAM guide);
    - ``asymptomatic_before``: before the sampling date for people without symptoms; 48 h
      by default as for symptoms (the issue's wording); Santé publique France's autumn-2020
      definition used 7 days for asymptomatic cases, hence a setting;
    - ``lookback``: a contact is at most 14 days before the diagnosis;
    - ``contact_isolation``: a contact isolates 7 days after the last contact (France from
      September 2020), tested on that day;
    - ``case_isolation``: the case isolates 7 days from onset (or sampling);
    - ``household``: a household contact's exposure lasts until the case's isolation ends,
      so their isolation ends ``contact_isolation`` after the case's;
    - ``sla``: level 2 takes over within 24 h.
    """

    symptomatic_before: timedelta = timedelta(hours=48)
    asymptomatic_before: timedelta = timedelta(hours=48)
    lookback: timedelta = timedelta(days=14)
    contact_isolation: timedelta = timedelta(days=7)
    case_isolation: timedelta = timedelta(days=7)
    test_after: timedelta = timedelta(days=7)
    sla: timedelta = timedelta(hours=24)


DEFAULT_RULES = TimeRules()


def _start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def contagious_from(
    onset: date | None, sampled: date | None, rules: TimeRules = DEFAULT_RULES
) -> date:
    """The first day of the contagious window: 48 h before symptom onset, or (no symptoms)
    ``asymptomatic_before`` the sampling date. Whole days: the window opens on that day."""
    if onset is not None:
        return (_start_of(onset) - rules.symptomatic_before).date()
    if sampled is not None:
        return (_start_of(sampled) - rules.asymptomatic_before).date()
    raise ValueError("a contagious window needs a symptom onset or a sampling date")


def case_isolation_until(
    onset: date | None, sampled: date | None, rules: TimeRules = DEFAULT_RULES
) -> date:
    """The last day of the case's isolation: ``case_isolation`` after onset (or sampling)."""
    start = onset or sampled
    if start is None:
        raise ValueError("an isolation needs a symptom onset or a sampling date")
    return start + rules.case_isolation


EARLIEST = date(2020, 1, 1)
"""No Covid-19 date before this one (the first French cases: January 2020)."""


class DateError(ValueError):
    """A date that makes no sense, and the field it is in."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_case_dates(
    diagnosis: date, onset: date | None, sampled: date | None, today: date
) -> None:
    """Refuse a patient-zero record's dates that make no sense: in the future, before 2020,
    or a symptom onset after the diagnosis. Raises ``DateError`` naming the field."""
    for name, day in (("diagnosis_date", diagnosis), ("onset_date", onset),
                      ("sampled_date", sampled)):  # fmt: skip
        check_day(name, day, today)
    if onset is not None and onset > diagnosis:
        raise DateError("onset_date", "the symptom onset is after the diagnosis date")


def check_day(name: str, day: date | None, today: date) -> None:
    """Refuse a date of the epidemic in the future or before 2020 (``DateError``)."""
    if day is None:
        return
    if day > today:
        raise DateError(name, f"{name} is in the future ({day.isoformat()})")
    if day < EARLIEST:
        raise DateError(name, f"{name} is before {EARLIEST.year} ({day.isoformat()})")


def check_contact_date(
    last_contact: date,
    onset: date | None,
    sampled: date | None,
    diagnosis: date,
    rules: TimeRules = DEFAULT_RULES,
) -> None:
    """Refuse a last contact outside the contagious window (or too old, or after the case's
    isolation ended: there was no exposure then)."""
    opens = max(contagious_from(onset, sampled, rules), diagnosis - rules.lookback)
    ends = case_isolation_until(onset, sampled, rules)
    if last_contact < opens:
        raise ValueError(f"a contact before {opens.isoformat()} is outside the contagious window")
    if last_contact > ends:
        raise ValueError(f"a contact after {ends.isoformat()} is after the case's isolation")


def isolation_until(
    last_contact: date,
    household: bool,
    onset: date | None,
    sampled: date | None,
    rules: TimeRules = DEFAULT_RULES,
) -> date:
    """The last day of a contact's isolation (the documented rule, ``TimeRules``)."""
    end = last_contact + rules.contact_isolation
    if household:
        end = max(end, case_isolation_until(onset, sampled, rules) + rules.contact_isolation)
    return end


def test_on(last_contact: date, rules: TimeRules = DEFAULT_RULES) -> date:
    """When the contact's PCR test is advised (7 days after the last contact)."""
    return last_contact + rules.test_after


def sla_due(opened_at: datetime, rules: TimeRules = DEFAULT_RULES) -> datetime:
    """When level 2 must have taken the case over."""
    return opened_at + rules.sla


def is_overdue(due: datetime, status: Status, level: Level, now: datetime) -> bool:
    """A case still initialised below level 3 after its deadline is overdue."""
    return status is Status.INITIALISED and level < Level.ARS and now > due


def queue_order(due: datetime, status: Status, level: Level, now: datetime) -> tuple[int, str]:
    """The sort key of work queues: overdue first, then the other initialised (to-do) cases,
    then the rest; each by nearest deadline (``ContactStore.list_cases`` sorts the same in
    SQL)."""
    rank = 0 if is_overdue(due, status, level, now) else 1 if status is Status.INITIALISED else 2
    return (rank, due.isoformat())


# --- clusters -------------------------------------------------------------------------------------


SETTING_KINDS = (
    "school",
    "care_home",
    "health_work",
    "collective_housing",
    "tourist_accommodation",
    "travel",
    "workplace",
    "event",
)
"""The exposure contexts of a patient-zero record (decree 2020-551 art. 2 II, Aug 2020)."""


def setting_key(kind: str, place: str) -> str:
    """A shared setting as cases are grouped on it: the kind and the normalised place
    (a UAI, a FINESS or a name): ``school:LYCEE VICTOR HUGO``."""
    if kind not in SETTING_KINDS:
        raise ValueError(f"a setting is one of {', '.join(SETTING_KINDS)}")
    name = normalise_name(place)
    if not name and not place.strip().isalnum():
        raise ValueError("a setting names its place")
    return f"{kind}:{name or place.strip().upper()}"


@dataclass(frozen=True, slots=True)
class Cluster:
    """Cases sharing a setting within a window."""

    setting: str
    case_ids: tuple[int, ...]
    first: date
    last: date


def detect_clusters(
    exposures: Iterable[tuple[int, str, date]], min_cases: int = 3, window_days: int = 7
) -> list[Cluster]:
    """Clusters among ``(case_id, setting_key, date)``: at least ``min_cases`` distinct cases
    of one setting whose dates fall within ``window_days`` of each other (a sliding window;
    the largest group of each setting, earliest first)."""
    by_setting: dict[str, list[tuple[date, int]]] = defaultdict(list)
    for case_id, key, day in exposures:
        by_setting[key].append((day, case_id))
    found: list[Cluster] = []
    for key, items in sorted(by_setting.items()):
        items.sort()
        best: list[tuple[date, int]] = []
        start = 0
        for end in range(len(items)):
            while items[end][0] - items[start][0] > timedelta(days=window_days - 1):
                start += 1
            group = items[start : end + 1]
            if len({c for _, c in group}) > len({c for _, c in best}):
                best = group
        ids = tuple(sorted({c for _, c in best}))
        if len(ids) >= min_cases:
            found.append(Cluster(key, ids, best[0][0], best[-1][0]))
    return found


# --- persons --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identity:
    """What recognises a person: NIR (when valid), else names and birth date."""

    last_name: str
    first_name: str
    birth_date: date | None
    nir: str | None = None


def clean_nir(value: str | None) -> str | None:
    """A NIR as stored (15 characters, spaces removed) when its key checks; None if absent.
    Raises ``ValueError`` for a NIR with a wrong key (a typo must not make a new person)."""
    if value is None or not value.strip():
        return None
    compact = re.sub(r"[\s.]", "", value).upper()
    if not is_valid_nir(compact):
        raise ValueError("the NIR's key does not match (15 characters: 13 digits and the key)")
    return compact


_POSTCODE = re.compile(r"\d{5}")
_DEPARTMENT = re.compile(r"0[1-9]|[1-8]\d|9[0-5]|2[AB]|97[1-8]|98[46-9]")


def department_of(postcode: str | None) -> str:
    """The département of a French postcode: its first two digits; Corsica's 20xxx is 2A
    (20000-20199) or 2B (20200 on); overseas (97x, 98x) three digits. Empty when the
    postcode is not five digits or names no département."""
    code = (postcode or "").strip()
    if not _POSTCODE.fullmatch(code):
        return ""
    if code.startswith("20"):
        return "2A" if int(code) < 20200 else "2B"
    found = code[:3] if code.startswith(("97", "98")) else code[:2]
    return found if _DEPARTMENT.fullmatch(found) else ""


def clean_department(value: str | None) -> str:
    """A département as stored (``75``, ``2A``, ``971``; ``1`` reads ``01``); empty if absent.
    Raises ``ValueError`` for a value that names no département."""
    text = (value or "").strip().upper()
    if not text:
        return ""
    if text.isdigit() and len(text) == 1:
        text = "0" + text
    if not _DEPARTMENT.fullmatch(text):
        raise ValueError("a département is 01-95, 2A, 2B or 971-978 (overseas)")
    return text


def identity_key(identity: Identity) -> str | None:
    """Normalised ``LAST|FIRST|YYYY-MM-DD`` (``kit.identity.normalise_name``), or None when
    a part is missing (such a person is never matched on identity)."""
    last, first = normalise_name(identity.last_name), normalise_name(identity.first_name)
    if not last or not first or identity.birth_date is None:
        return None
    return f"{last}|{first}|{identity.birth_date.isoformat()}"


def search_text(last_name: str, first_name: str) -> str:
    """What name search looks in: ``LAST FIRST``, normalised."""
    return normalise_name(f"{last_name} {first_name}")


MIN_PREFIX = 3


def search_tokens(last_name: str, first_name: str) -> str:
    """What the name index holds: every prefix of at least 3 letters of every word of the
    normalised ``LAST FIRST`` (and the shorter words whole), space-separated, once each.
    ``Dupont-Lefèvre Élodie`` gives ``DUP DUPO DUPON DUPONT LEF ... ELODIE``: a search for
    ``dupon elo`` is then an exact look-up of two tokens."""
    tokens: dict[str, None] = {}
    for word in search_text(last_name, first_name).split():
        if len(word) <= MIN_PREFIX:
            tokens[word] = None
        else:
            for end in range(MIN_PREFIX, len(word) + 1):
                tokens[word[:end]] = None
    return " ".join(tokens)


def query_words(text: str) -> list[str]:
    """The words of a name search, normalised like names."""
    return normalise_name(text).split()


def same_person(a: Identity, b: Identity) -> bool:
    """Whether two identities are one person: the same NIR when both have one (different
    NIRs are different people whatever the names), else the same normalised identity."""
    if a.nir and b.nir:
        return a.nir == b.nir
    key = identity_key(a)
    return key is not None and key == identity_key(b)


def best_match(candidate: Identity, known: Sequence[tuple[int, Identity]]) -> int | None:
    """The id of the known person ``candidate`` is (NIR first, then identity), or None."""
    if candidate.nir:
        for person_id, identity in known:
            if identity.nir == candidate.nir:
                return person_id
    for person_id, identity in known:
        if same_person(candidate, identity):
            return person_id
    return None


# --- record numbers and codes ---------------------------------------------------------------------

RECORD_PREFIX = "CC"
_RECORD = re.compile(r"CC(\d{8})")
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U


def record_number(case_id: int) -> str:
    """The record number shown to agents and to the ARS: ``CC00000042``."""
    return f"{RECORD_PREFIX}{case_id:08d}"


def parse_record_number(value: str) -> int | None:
    """The case id of a record number, or None."""
    found = _RECORD.fullmatch(value.strip().upper())
    return int(found.group(1)) if found else None


def code_check(body: str) -> str:
    """The check character of a prescription code: the sum of the characters' values with
    odd weights (1, 3, 5...), mod 32. Odd weights are prime to 32, so any one wrong
    character changes the check: a typo is refused before any database look-up."""
    total = sum((2 * i + 1) * CODE_ALPHABET.index(c) for i, c in enumerate(body))
    return CODE_ALPHABET[total % 32]


def make_code(random_bytes: bytes) -> str:
    """A prescription code from 10 random bytes: 10 characters (50 bits) and a check
    character, shown as ``XXXX-XXXX-XXX``."""
    if len(random_bytes) < 10:
        raise ValueError("a code needs 10 random bytes")
    number = int.from_bytes(random_bytes[:10], "big")
    body = "".join(CODE_ALPHABET[(number >> (5 * i)) & 31] for i in range(10))
    return body + code_check(body)


def normalise_code(value: str) -> str | None:
    """A typed code in its stored form (case, dashes, spaces, O/I/L read as 0/1/1), or None
    when it cannot be one (length or check character)."""
    text = re.sub(r"[\s-]", "", value.upper()).translate(str.maketrans("OIL", "011"))
    if len(text) != 11 or any(c not in CODE_ALPHABET for c in text):
        return None
    return text if code_check(text[:10]) == text[10] else None


def show_code(code: str) -> str:
    """A code as printed: ``XXXX-XXXX-XXX``."""
    return f"{code[:4]}-{code[4:8]}-{code[8:]}"


_PHONE = re.compile(r"\+?\d{9,15}")


def normalise_phone(value: str | None) -> str | None:
    """A French or international phone number in international form (``+33612345678``), or
    None if empty. Raises ``ValueError`` for something else."""
    if value is None or not value.strip():
        return None
    text = re.sub(r"[\s.\-()]", "", value)
    if not _PHONE.fullmatch(text):
        raise ValueError("a phone number is 10 digits (06 12 34 56 78) or +33...")
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("0") and len(text) == 10:
        text = "+33" + text[1:]
    elif not text.startswith("+"):
        raise ValueError("a phone number is 10 digits (06 12 34 56 78) or +33...")
    return text
