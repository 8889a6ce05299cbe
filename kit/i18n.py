"""Languages, translations and dates of the services' pages: French first, English available.

Translations are gettext ``.po`` files read when a service starts (Babel's ``read_po``; no
compile step, no ``.mo`` file in the repository): ``<dir>/<lang>/LC_MESSAGES/messages.po``
in the kit's ``kit/locale`` and in each service's own folder, the service's winning where both
translate a message. Message ids are English, so English needs no catalog.

A page's language is ``?lang=`` (remembered in a cookie), else that cookie, else the
browser's ``Accept-Language``, else French. Dates and times are shown in the page's language
and the user's time zone (Europe/Paris unless the account says otherwise): ``jeudi 10
décembre 2026, 05:08``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from babel import Locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_time as babel_format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

LANGUAGES = ("fr", "en")
"""The languages every service offers, the default first."""
DEFAULT_LANGUAGE = "fr"
DEFAULT_TIME_ZONE = "Europe/Paris"
LANGUAGE_COOKIE = "lang"
KIT_LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"

# Formats follow France for French and the United Kingdom for English (24-hour clock, day
# before month), which a French service's English readers expect more than US formats.
_FORMAT_LOCALES = {"fr": Locale("fr", "FR"), "en": Locale("en", "GB")}


def load_translations(language: str, directories: Iterable[Path]) -> Translations:
    """The translations of ``language`` from each directory's ``.po`` file, later directories
    overriding earlier ones; an empty catalog where none exists."""
    merged = Translations()
    for directory in directories:
        path = directory / language / "LC_MESSAGES" / f"{DOMAIN}.po"
        if not path.is_file():
            continue
        with path.open("rb") as po:
            catalog = read_po(po, locale=language)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)  # in memory: gettext's reader takes the .mo layout
        compiled.seek(0)
        merged.merge(Translations(fp=compiled, domain=DOMAIN))
    return merged


def parse_accept_language(header: str) -> list[str]:
    """The primary language tags of an ``Accept-Language`` header, most preferred first
    (``fr-FR,fr;q=0.9,en;q=0.8`` gives ``["fr", "en"]``); garbage gives ``[]``."""
    weighted: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        primary = tag.strip().split("-")[0].lower()
        if primary.isalpha() and 0 < quality <= 1:
            weighted.append((-quality, position, primary))
    seen: list[str] = []
    for _, _, primary in sorted(weighted):
        if primary not in seen:
            seen.append(primary)
    return seen


def negotiate(
    asked: str | None,
    cookie: str | None,
    accept_language: str,
    available: Sequence[str] = LANGUAGES,
    default: str = DEFAULT_LANGUAGE,
) -> str:
    """The language of a page: what the query asked, else the cookie, else the browser's
    preference, else ``default``; only ever one of ``available``."""
    for candidate in (asked, cookie):
        if candidate is not None and candidate in available:
            return candidate
    for candidate in parse_accept_language(accept_language):
        if candidate in available:
            return candidate
    return default


def language_of(
    request: web.Request, available: Sequence[str] = LANGUAGES, default: str = DEFAULT_LANGUAGE
) -> str:
    """``negotiate`` for a request (``?lang=``, the ``lang`` cookie, ``Accept-Language``)."""
    return negotiate(
        request.query.get("lang"),
        request.cookies.get(LANGUAGE_COOKIE),
        request.headers.get("Accept-Language", ""),
        available,
        default,
    )


def remember_language(request: web.Request, response: web.StreamResponse, language: str) -> None:
    """Keep an explicit ``?lang=`` choice in a cookie for a year."""
    if request.query.get("lang") == language:
        response.set_cookie(
            LANGUAGE_COOKIE,
            language,
            max_age=365 * 24 * 3600,
            path="/",
            samesite="Lax",
            secure=request.secure,
            httponly=True,
        )


def time_zone(name: str | None) -> ZoneInfo:
    """The named time zone, or Europe/Paris for none or an unknown name."""
    try:
        return ZoneInfo(name or DEFAULT_TIME_ZONE)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_TIME_ZONE)


def is_time_zone(name: str) -> bool:
    """Whether ``name`` is a time zone of the system's database (``Europe/Paris``...)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def format_datetime(moment: datetime, language: str, zone: str | None = None) -> str:
    """A moment as people read it: ``jeudi 10 décembre 2026, 05:08`` (French) or ``Thursday,
    10 December 2026, 05:08`` (English), in ``zone`` (default Europe/Paris)."""
    locale = _FORMAT_LOCALES.get(language, _FORMAT_LOCALES[DEFAULT_LANGUAGE])
    local = moment.astimezone(time_zone(zone))
    pattern = str(locale.datetime_formats["full"])  # "{1}, {0}": date, then time
    return pattern.format(
        babel_format_time(local, "short", locale=locale),
        babel_format_date(local.date(), "full", locale=locale),
    )


def format_day(day: date, language: str) -> str:
    """A calendar date: ``jeudi 10 décembre 2026``."""
    locale = _FORMAT_LOCALES.get(language, _FORMAT_LOCALES[DEFAULT_LANGUAGE])
    return babel_format_date(day, "full", locale=locale)
