"""Every message of SI-VIC's pages has its French, and the catalog holds no stale one."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from kit.i18n import KIT_LOCALE_DIR, load_translations

SIVIC = Path(__file__).resolve().parents[2] / "sivic"
LOCALE = SIVIC / "locale"
SAME = {"Patients", "COVID", "Patient", "Date", "Département"}
"""Words spelt alike in both languages."""


def sivic_messages() -> set[str]:
    """The messages of the templates, of ``_t`` calls and of ``N_`` marks."""
    found = extract_from_dir(
        str(SIVIC),
        method_map=[("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords=dict(DEFAULT_KEYWORDS) | {"_t": (2,)},
    )
    return {m for _, _, m, _, _ in found if isinstance(m, str)}


def test_every_message_is_translated_to_french() -> None:
    messages = sivic_messages()
    assert len(messages) > 60  # the extraction really found the templates and the code
    french = load_translations("fr", [KIT_LOCALE_DIR, LOCALE])
    assert [m for m in messages if french.gettext(m) == m and m not in SAME] == []


def test_the_catalog_holds_only_messages_in_use() -> None:
    with (LOCALE / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="fr")
    assert {m.id for m in catalog if m.id} - sivic_messages() == set()
