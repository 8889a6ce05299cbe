"""Every message of the code service's pages has its French, and the catalog holds no stale one."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from kit.i18n import KIT_LOCALE_DIR, load_translations

CODES = Path(__file__).resolve().parents[2] / "codes"
LOCALE = CODES / "locale"


def codes_messages() -> set[str | tuple[str, str]]:
    """The messages of the templates, of ``tr``/``trn`` calls and of ``N_`` marks (a plural
    message as its two forms)."""
    keywords = dict(DEFAULT_KEYWORDS) | {"tr": (2,), "trn": (2, 3)}
    found = extract_from_dir(
        str(CODES),
        method_map=[("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords=keywords,
    )
    return {m if isinstance(m, str) else (m[0], m[1]) for _, _, m, _, _ in found}


def test_every_message_is_translated_to_french() -> None:
    messages = codes_messages()
    assert len(messages) > 100  # the extraction really found the templates and the code
    french = load_translations("fr", [KIT_LOCALE_DIR, LOCALE])

    def untranslated(message: str | tuple[str, str]) -> bool:
        if isinstance(message, str):
            return french.gettext(message) == message and message not in SAME
        return french.ngettext(*message, 2) == message[1]

    assert [m for m in messages if untranslated(m)] == []


def test_the_catalog_holds_only_messages_in_use() -> None:
    with (LOCALE / "fr" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale="fr")
    ids = {m.id if isinstance(m.id, str) else (m.id[0], m.id[1]) for m in catalog if m.id}
    assert ids - codes_messages() == set()


SAME = {"Codes", "Code", "Actions", "Martinique", "Mayotte", "Saint-Pierre-et-Miquelon",
        "Guadeloupe, Saint-Martin, Saint-Barthélemy", "Organisations", "Action", "doctor",
        "admin", "active"}  # fmt: skip
"""Words spelt alike in both languages (and the roles the kit translates)."""
