"""French first, English available: every message of the pages has its French, and each
page answers in the visitor's language."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir

from citizens.directory import AUDIENCES, FEATURES, INSTALLATIONS, SECURITY
from kit.i18n import KIT_LOCALE_DIR, load_translations
from tests.citizens.conftest import Running

CITIZENS = Path(__file__).resolve().parents[2] / "citizens"


def citizens_messages() -> set[str]:
    """The messages of the templates (``_``, ``ngettext``), of the code's
    ``pages.gettext(language, ...)`` calls, and of the ``N_`` markers."""
    found = extract_from_dir(
        str(CITIZENS),
        method_map=[("templates/**.html", "jinja2.ext:babel_extract"), ("**.py", "python")],
        options_map={"templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords=dict(DEFAULT_KEYWORDS) | {"gettext": (2,), "N_": None},
    )
    messages: set[str] = set()
    for _, _, message, _, _ in found:
        messages.update([message] if isinstance(message, str) else message)
    return messages


def test_every_message_has_its_french() -> None:
    messages = citizens_messages()
    assert len(messages) > 120  # the extraction found the templates, the code and markers
    labels = {*FEATURES.values(), *AUDIENCES.values(), *INSTALLATIONS.values()}
    assert labels | set(SECURITY.values()) <= messages  # the N_ markers were found
    messages.add("moderator")  # the role's name, shown beside a moderator's
    french = load_translations("fr", [KIT_LOCALE_DIR, CITIZENS / "locale"])
    untranslated = sorted(m for m in messages if french.gettext(m) == m)
    same_in_both = {"Mes Conseils Covid", "RT-PCR", "Installation", "Description", "Patients"}
    same_in_both |= {"%(num)d service", "%(num)d services"}
    assert set(untranslated) <= same_in_both, untranslated


@pytest.mark.parametrize(
    ("path", "french", "english"),
    [
        ("/citizens/", "Où se faire tester", "Where to get tested"),
        ("/citizens/advice/", "Voir mes conseils", "See my advice"),
        ("/citizens/sites/?where=Rennes", "Lieux de dépistage près de Rennes", "Test sites near"),
        ("/citizens/directory/", "Outils de santé numérique", "E-health tools"),
        ("/citizens/directory/submit", "Envoyer la déclaration", "Send the declaration"),
    ],
)
async def test_pages_are_french_first_with_english(
    running: Running, path: str, french: str, english: str
) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(running.url + path) as r:
            assert french in await r.text() and 'lang="fr"' in await r.text()
        headers = {"Accept-Language": "en-GB,en;q=0.9"}
        async with session.get(running.url + path, headers=headers) as r:
            page = await r.text()
            assert english in page and french not in page and 'lang="en"' in page
