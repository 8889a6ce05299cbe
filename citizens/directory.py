"""The directory of e-health tools: what a publisher declares, and how it is checked and found.

In 2020 the ministry's "Guichet innovation numérique" referenced 218 e-health services (80
for teleconsultation) from their publishers' self-declarations, and let citizens and
professionals filter them by region, features, ease of installation and security. Here a
publisher submits the same kind of declaration through a form; a moderator (signed in with a
password and a TOTP code) publishes or rejects it; only published entries are shown.

The criteria below are ours, modelled on what the Guichet asked (an assumption: its exact
form was not available to read; docs/citizens.md). Everything is a declaration by the
publisher, shown as such, never a certification by this service.

Search is one portable way on both databases: each entry keeps a ``search_text`` column (its
words folded: no accents, no case), and a query's words must each start a word of it
(``LIKE '% word%'``). At the directory's scale (hundreds of entries) a scan takes well under a
millisecond, and SQLite and PostgreSQL answer identically, which two full-text engines with
their own stemmers and dictionaries would not (docs/citizens.md).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from citizens.places import fold


def N_(message: str) -> str:
    """Mark ``message`` for the French catalogue; it is translated where it is shown (the
    templates' ``_()``, ``Pages.gettext``), in the visitor's language."""
    return message


FEATURES: dict[str, str] = {
    "teleconsultation": N_("Teleconsultation"),
    "telecare": N_("Telecare (télésoin)"),
    "teleexpertise": N_("Tele-expertise"),
    "monitoring": N_("Remote monitoring"),
    "messaging": N_("Secure messaging"),
    "prescription": N_("Electronic prescription"),
    "booking": N_("Appointment booking"),
}
AUDIENCES: dict[str, str] = {
    "patients": N_("Patients"),
    "professionals": N_("Health professionals"),
}
INSTALLATIONS: dict[str, str] = {
    "browser": N_("Nothing to install (web browser)"),
    "app": N_("A mobile app to download"),
    "software": N_("Software to install"),
}
REGIONS: dict[str, str] = {
    "01": "Guadeloupe", "02": "Martinique", "03": "Guyane", "04": "La Réunion", "06": "Mayotte",
    "11": "Île-de-France", "24": "Centre-Val de Loire", "27": "Bourgogne-Franche-Comté",
    "28": "Normandie", "32": "Hauts-de-France", "44": "Grand Est", "52": "Pays de la Loire",
    "53": "Bretagne", "75": "Nouvelle-Aquitaine", "76": "Occitanie",
    "84": "Auvergne-Rhône-Alpes", "93": "Provence-Alpes-Côte d'Azur", "94": "Corse",
}  # fmt: skip
"""The regions (INSEE COG codes and names, from @etalab/decoupage-administratif 6.0.0)."""
SECURITY: dict[str, str] = {
    "hds": N_("Health data hosted by a certified host (HDS)"),
    "gdpr": N_("GDPR compliance declared"),
    "psc": N_("Sign-in with Pro Santé Connect (e-CPS)"),
    "dmp": N_("Works with the shared medical record (DMP)"),
}
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[A-Za-z]{2,}$")
MAX_QUERY_WORDS = 8


class Status(StrEnum):
    """Where a declaration stands."""

    PENDING = "pending"
    PUBLISHED = "published"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Declaration:
    """What a publisher declares about one service."""

    name: str
    publisher: str
    url: str
    description: str
    features: frozenset[str]
    audiences: frozenset[str]
    regions: frozenset[str]
    """Region codes; empty means the whole country."""
    installation: str
    security: frozenset[str]
    free: bool
    contact_email: str
    """For the moderators only; never shown nor given by the API."""


@dataclass(frozen=True, slots=True)
class Entry:
    """A declaration as the directory keeps it."""

    id: int
    declaration: Declaration
    status: Status
    submitted_at: datetime
    reviewed_at: datetime | None
    reviewed_by: str | None
    review_note: str


class InvalidDeclaration(ValueError):
    """A declaration with errors: field name to message (English message ids)."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


def _text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def _choices(form: Mapping[str, object], name: str) -> list[str]:
    value = form.get(name, [])
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, str)]
    return []


def parse_declaration(form: Mapping[str, object]) -> Declaration:
    """A declaration from a form or JSON body (``InvalidDeclaration`` listing every error)."""
    errors: dict[str, str] = {}
    name = _text(form, "name")
    publisher = _text(form, "publisher")
    url = _text(form, "url")
    description = _text(form, "description")
    email = _text(form, "contact_email")
    if not 2 <= len(name) <= 100:
        errors["name"] = N_("Give the service's name (2 to 100 characters).")
    if not 2 <= len(publisher) <= 100:
        errors["publisher"] = N_("Give the publisher's name (2 to 100 characters).")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc or len(url) > 300 or " " in url:
        errors["url"] = N_("Give the service's address, starting with https://.")
    if not 20 <= len(description) <= 2000:
        errors["description"] = N_("Describe the service in 20 to 2000 characters.")
    if not EMAIL.match(email):
        errors["contact_email"] = N_("Give an e-mail address where the moderators can reach you.")
    features = set(_choices(form, "features"))
    if not features or not features <= FEATURES.keys():
        errors["features"] = N_("Tick at least one feature.")
    audiences = set(_choices(form, "audiences"))
    if not audiences or not audiences <= AUDIENCES.keys():
        errors["audiences"] = N_("Tick who the service is for.")
    regions = set(_choices(form, "regions"))
    if not regions <= REGIONS.keys():
        errors["regions"] = N_("Unknown region.")
    installation = _text(form, "installation")
    if installation not in INSTALLATIONS:
        errors["installation"] = N_("Choose what the user has to install.")
    security = set(_choices(form, "security"))
    if not security <= SECURITY.keys():
        errors["security"] = N_("Unknown security criterion.")
    free_value = form.get("free", "")
    free = free_value is True or free_value in ("1", "on", "yes", "true")
    if errors:
        raise InvalidDeclaration(errors)
    return Declaration(
        name=name,
        publisher=publisher,
        url=url,
        description=description,
        features=frozenset(features),
        audiences=frozenset(audiences),
        regions=frozenset(regions),
        installation=installation,
        security=frozenset(security),
        free=free,
        contact_email=email,
    )


def search_text(declaration: Declaration) -> str:
    """The words a query is matched against, folded, with a leading space (so that every
    word, the first included, is preceded by one)."""
    labels = [FEATURES[f] for f in sorted(declaration.features)]
    words = " ".join([declaration.name, declaration.publisher, declaration.description, *labels])
    return " " + fold(words) + " "


def query_words(query: str) -> list[str]:
    """A search query's folded words (at most ``MAX_QUERY_WORDS``)."""
    return [w for w in fold(query).split() if w][:MAX_QUERY_WORDS]


def encode_set(values: frozenset[str]) -> str:
    """A set as stored: ``,a,b,`` (so that ``LIKE '%,a,%'`` finds a member)."""
    return "," + ",".join(sorted(values)) + "," if values else ","


def decode_set(text: str) -> frozenset[str]:
    """The inverse of ``encode_set``."""
    return frozenset(v for v in text.split(",") if v)
