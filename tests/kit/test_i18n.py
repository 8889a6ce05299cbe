"""kit.i18n: every kit message has its French translation; language choice; dates."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from hypothesis import given
from hypothesis import strategies as st

from kit.i18n import (
    KIT_LOCALE_DIR,
    format_datetime,
    format_day,
    load_translations,
    negotiate,
    parse_accept_language,
)

KIT = Path(__file__).resolve().parents[2] / "kit"


def kit_messages() -> set[str]:
    """Every message of the kit's templates and of its Python code's ``_text`` calls."""
    keywords = dict(DEFAULT_KEYWORDS) | {"_text": (2,)}
    found = extract_from_dir(
        str(KIT),
        method_map=[("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords=keywords,
    )
    return {message for _, _, message, _, _ in found if isinstance(message, str)}


def test_every_kit_message_is_translated_to_french() -> None:
    messages = kit_messages()
    assert len(messages) > 30  # the extraction really found the templates
    french = load_translations("fr", [KIT_LOCALE_DIR])
    untranslated = sorted(m for m in messages if french.gettext(m) == m)
    assert untranslated == []


def test_a_service_catalog_overrides_the_kits() -> None:
    demo = Path(__file__).resolve().parent / "locale"
    merged = load_translations("fr", [KIT_LOCALE_DIR, demo])
    assert merged.gettext("Sign out") == "Déconnexion"  # the demo's word
    assert merged.gettext("Password") == "Mot de passe"  # the kit's
    assert merged.gettext("Cases") == "Dossiers"
    assert load_translations("en", [KIT_LOCALE_DIR, demo]).gettext("Cases") == "Cases"


@pytest.mark.parametrize(
    ("asked", "cookie", "header", "chosen"),
    [
        (None, None, "", "fr"),
        (None, None, "en-GB,en;q=0.9,fr;q=0.8", "en"),
        (None, None, "de-DE,de;q=0.9,en;q=0.5", "en"),
        (None, None, "de-DE", "fr"),
        (None, "en", "fr-FR", "en"),
        ("fr", "en", "en", "fr"),
        ("xx", None, "en", "en"),
        (None, None, "fr;q=0.1,en;q=0.2", "en"),
        (None, None, "en;q=0", "fr"),
    ],
)
def test_language_choice(asked: str | None, cookie: str | None, header: str, chosen: str) -> None:
    assert negotiate(asked, cookie, header) == chosen


@given(st.text(max_size=200))
def test_any_accept_language_header_gives_known_tags_or_none(header: str) -> None:
    tags = parse_accept_language(header)
    assert all(tag.isalpha() and tag == tag.lower() for tag in tags)
    assert negotiate(None, None, header) in ("fr", "en")


def test_dates_in_the_users_language_and_time_zone() -> None:
    moment = datetime(2026, 12, 10, 4, 8, tzinfo=UTC)
    assert format_datetime(moment, "fr") == "jeudi 10 décembre 2026, 05:08"
    assert format_datetime(moment, "en") == "Thursday, 10 December 2026, 05:08"
    assert format_datetime(moment, "fr", "Indian/Reunion") == "jeudi 10 décembre 2026, 08:08"
    summer = datetime(2026, 7, 14, 22, 30, tzinfo=UTC)  # daylight saving time: UTC+2
    assert format_datetime(summer, "fr") == "mercredi 15 juillet 2026, 00:30"
    assert format_datetime(moment, "fr", "Not/AZone") == "jeudi 10 décembre 2026, 05:08"
    assert format_day(date(2026, 12, 10), "fr") == "jeudi 10 décembre 2026"
