"""Every message of Contact Covid's pages has its French."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

from kit.i18n import KIT_LOCALE_DIR, load_translations

CONTACT = Path(__file__).resolve().parents[2] / "contact"
SAME = {"Agent", "Clusters", "Contact", "Contacts", "Page %(n)s", "Prescriptions", "06 12 34 56 78"}
"""Words spelt alike in both languages."""


def contact_messages() -> set[str]:
    """The messages of the templates and of the ``_t`` calls."""
    found = extract_from_dir(
        str(CONTACT),
        method_map=[("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords=dict(DEFAULT_KEYWORDS) | {"_t": (2,)},
    )
    return {m for _, _, m, _, _ in found if isinstance(m, str)}


def test_every_message_is_translated_to_french() -> None:
    messages = contact_messages()
    assert len(messages) > 60  # the extraction really found the templates and the code
    french = load_translations("fr", [KIT_LOCALE_DIR, CONTACT / "locale"])
    assert sorted(m for m in messages if french.gettext(m) == m and m not in SAME) == []
