"""The patient's handout, PDF and HTML: rendered to images with poppler (as a person would see
it printed), its QR codes decoded and checked, its words read back.

The rendered pages go to the test's temporary directory, or to ``$CODES_SCREENSHOTS`` when set
(``CODES_SCREENSHOTS=docs/screens pytest tests/codes/test_handout.py`` refreshes the
documentation's images).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from client_sim.clock import VirtualClock
from codes.app import new_service
from codes.handout import (
    CARD_HEIGHT,
    CARD_WIDTH,
    GRID_MARGIN,
    Layout,
    _latin1,
    handout_html,
    handout_pdf,
)
from codes.links import Authority, verify_link
from codes.model import Organisation, Role
from codes.service import CodeService, IssuedCode
from codes.settings import Settings
from protocol.codes import CodeKind
from tests.codes.conftest import read_qr

PDFTOPPM = shutil.which("pdftoppm")
needs_poppler = pytest.mark.skipif(
    PDFTOPPM is None or shutil.which("pdftotext") is None,
    reason="pdftoppm and pdftotext (Debian's poppler-utils) render the PDF to look at it",
)
ADDRESS = "12 boulevard Voltaire\n75011 Paris\nTél. 01 43 55 00 00"


@pytest.fixture
def screens(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CODES_SCREENSHOTS", tmp_path / "screens"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def opened(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[CodeService]:
    service = new_service(Settings(database=f"sqlite:///{tmp_path}/codes.db"), clock)
    await service.open()
    try:
        yield service
    finally:
        await service.close()


async def lab_codes(service: CodeService, count: int) -> tuple[Organisation, list[IssuedCode]]:
    lab = await service.create_org("BIO11", Role.LAB, "Laboratoire Biomed Paris 11", ADDRESS)
    return lab, await service.issue(lab, CodeKind.LONG, count, "2026-03-01")


def render(pdf: bytes, folder: Path, name: str, dpi: int = 150) -> list[Path]:
    """The PDF's pages as PNG files ``folder/name-N.png``."""
    source = folder / f"{name}.pdf"
    source.write_bytes(pdf)
    assert PDFTOPPM is not None
    subprocess.run([PDFTOPPM, "-r", str(dpi), "-png", str(source), str(folder / name)], check=True)
    source.unlink()
    return sorted(folder.glob(f"{name}-*.png"))


def text_of(pdf: bytes, tmp_path: Path) -> str:
    source = tmp_path / "text.pdf"
    source.write_bytes(pdf)
    done = subprocess.run(["pdftotext", str(source), "-"], check=True, capture_output=True)
    return " ".join(done.stdout.decode().split())  # lines joined: wrapping is layout


def authority(org: Organisation) -> dict[str, Authority]:
    return {org.name: Authority(org.name, org.role, org.verify_key)}


def qr_in(page: Path) -> list[str]:
    """The texts of the QR codes on a rendered page."""
    with Image.open(page) as image:
        return read_qr(image)


@needs_poppler
async def test_one_handout_a_page_has_all_a_patient_needs_and_no_link(
    opened: CodeService, screens: Path, tmp_path: Path
) -> None:
    lab, codes = await lab_codes(opened, 2)
    pdf = handout_pdf(lab, codes, Layout.PAGE)
    pages = render(pdf, screens, "codes-handout-page")
    assert len(pages) == 2
    for page, issued in zip(pages, codes, strict=True):
        with Image.open(page) as image:
            assert image.size == (1241, 1754)  # A4 (210 x 297 mm) at 150 dpi
        [link] = qr_in(page)
        assert link == issued.link
        assert verify_link(link, authority(lab)).code == issued.record.code
    text = text_of(pdf, tmp_path)
    for expected in (
        "Laboratoire Biomed Paris 11",
        "12 boulevard Voltaire 75011 Paris Tél. 01 43 55 00 00",
        codes[0].record.code,
        "Votre code pour TousAntiCovid",
        # Issued 2026-03-02 09:00:07 UTC, valid 7 days: 10:00 in Paris (UTC+1 in March).
        "Valable jusqu'au lundi 9 mars 2026, 10:00",
        "Valid until Monday, 9 March 2026, 10:00",
        "Ouvrez l'application TousAntiCovid et touchez « Me déclarer ».",
        "sans que personne ne sache qui vous êtes",
        "Ce code ne sert qu'une fois",
        "Open the TousAntiCovid app",
        "Test du dimanche 1 mars 2026",
    ):
        assert expected in text, expected
    assert "stopcovid" not in text and "sig=" not in text


@needs_poppler
async def test_a_grid_prints_eight_cards_a_page_each_scannable(
    opened: CodeService, screens: Path, tmp_path: Path
) -> None:
    lab, codes = await lab_codes(opened, 10)
    pdf = handout_pdf(lab, codes, Layout.GRID)
    first, second = render(pdf, screens, "codes-handout-grid")
    assert set(qr_in(first)) == {c.link for c in codes[:8]}
    assert set(qr_in(second)) == {c.link for c in codes[8:]}
    text = text_of(pdf, tmp_path)
    assert text.count("Laboratoire Biomed Paris 11") == 10
    assert text.count("Valable jusqu'au lundi 9 mars 2026, 10:00") == 10
    assert all(c.record.code in text for c in codes) and "stopcovid" not in text


MM = 25.4 / 72  # millimetres in a PDF point
WORD = re.compile(
    r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>'
)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def words_by_card(pdf: bytes, tmp_path: Path) -> dict[tuple[int, int], list[tuple[float, ...]]]:
    """The first page's words (x0, y0, x1, y1 in mm, then the word's index in ``texts``) by
    the grid's card (column, row) they start in."""
    source = tmp_path / "words.pdf"
    source.write_bytes(pdf)
    done = subprocess.run(
        ["pdftotext", "-bbox", "-f", "1", "-l", "1", str(source), "-"],
        check=True,
        capture_output=True,
    )
    cards: dict[tuple[int, int], list[tuple[float, ...]]] = {}
    for match in WORD.finditer(done.stdout.decode()):
        x0, y0, x1, y1 = (float(v) * MM for v in match.groups()[:4])
        key = (int((x0 - GRID_MARGIN) // CARD_WIDTH), int((y0 - GRID_MARGIN) // CARD_HEIGHT))
        cards.setdefault(key, []).append((x0, y0, x1, y1, 1.0 if UUID.fullmatch(match[5]) else 0))
    return cards


@needs_poppler
async def test_a_grid_card_says_why_until_when_in_both_languages_and_the_code_large(
    opened: CodeService, clock: VirtualClock, tmp_path: Path
) -> None:
    # The longest dates: expiry on Wednesday 30 September (mercredi 30 septembre).
    clock.move_to(datetime(2026, 9, 23, 21, 0, tzinfo=UTC).timestamp())
    lab = await opened.create_org("BIO11", Role.LAB, "Laboratoire Biomed Paris 11", ADDRESS)
    codes = await opened.issue(lab, CodeKind.LONG, 8, "2026-09-23")
    pdf = handout_pdf(lab, codes, Layout.GRID)
    text = text_of(pdf, tmp_path)
    for said in (
        "Valable jusqu'au mercredi 30 septembre 2026, 23:00",
        "Valid until Wednesday, 30 September 2026, 23:00",
        "vous prévenez anonymement les personnes croisées de près",
        "you warn the people you were close to, anonymously",
    ):
        assert text.count(said) == 8, said
    cards = words_by_card(pdf, tmp_path)
    assert len(cards) == 8
    for (column, row), words in cards.items():
        left = GRID_MARGIN + column * CARD_WIDTH
        top = GRID_MARGIN + row * CARD_HEIGHT
        [code] = [w for w in words if w[4]]
        # About 11 pt: 36 Courier characters at 11 pt are 84 mm (9.5 pt: 72 mm), within the
        # card's 87 mm inside its 4 mm margins.
        assert 82 <= code[2] - code[0] <= CARD_WIDTH - 8, code
        assert code[0] >= left + 3.5 and code[2] <= left + CARD_WIDTH - 3.5
        assert code[3] <= top + CARD_HEIGHT - 1.5  # above the cut line
        for word in words:
            if word is not code:  # everything else above the code, inside the card
                assert word[3] <= code[1] + 0.2, (word, code)
                assert word[2] <= left + CARD_WIDTH - 3.5, word


@needs_poppler
async def test_a_doctors_short_code_prints_large(
    opened: CodeService, screens: Path, tmp_path: Path
) -> None:
    practice = await opened.create_org(
        "DOC1", Role.DOCTOR, "Cabinet du Dr Anne Martin", "3 rue de la Roquette\n75011 Paris"
    )
    [issued] = await opened.issue(practice, CodeKind.SHORT, 1)
    pdf = handout_pdf(practice, [issued], Layout.PAGE)
    [page] = render(pdf, screens, "codes-handout-short")
    assert qr_in(page) == [issued.link]
    text = text_of(pdf, tmp_path)
    assert issued.record.code in text and "Valable jusqu'au lundi 2 mars 2026, 11:00" in text


async def test_the_html_handout_says_the_same_in_both_languages(opened: CodeService) -> None:
    lab, codes = await lab_codes(opened, 9)
    page = handout_html(lab, codes[:2], Layout.PAGE, "Indian/Reunion")
    assert page.count('class="paper handout"') == 2 and page.count("<svg") == 2
    assert "Valable jusqu’au lundi 9 mars 2026, 13:00" in page  # Réunion: UTC+4
    assert '<p class="until-en" lang="en">Valid until Monday, 9 March 2026, 13:00</p>' in page
    assert '<address class="address">12 boulevard Voltaire\n75011 Paris' in page
    assert "stopcovid" not in page and "sig=" not in page
    grid = handout_html(lab, codes, Layout.GRID)
    assert grid.count('class="paper sheet"') == 2 and grid.count('class="card"') == 9
    assert grid.count('lang="en">Valid until Monday, 9 March 2026, 10:00</p>') == 9
    assert grid.count("vous prévenez anonymement les personnes croisées de près") == 9
    assert grid.count("you warn the people you were close to, anonymously") == 9
    assert 'nonce="' not in grid  # a file on disk: no CSP to satisfy


def test_pdf_text_is_spelled_in_the_standard_fonts_characters() -> None:
    assert _latin1("l’application « Me déclarer » – cœur…") == (
        "l'application « Me déclarer » - coeur..."
    )
    assert _latin1("Ωmega") == "?mega"  # outside Latin-1: never a failed handout
