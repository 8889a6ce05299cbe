"""The patient's handout: what a lab or a doctor prints and hands over with a code.

It says who issued the code (the organisation's full name and address), shows the QR code to
scan with the app and the code in large type for those who type it, how long it is valid in
words ("valable jusqu'au jeudi 10 décembre 2026, 05:08", in the issuer's time zone), and, in
plain French then English, what to do with it and why. The signed deep link is only inside the
QR code: printed in clear it is noise, and a second thing to type.

Two layouts on A4, as PDF (fpdf2) or HTML: one handout per page (``page``), or eight cards per
page to cut apart (``grid``), as labs printed them on results or on sticky labels. The PDF uses
the standard PDF fonts (Helvetica, Courier: nothing embedded, every reader has them), whose
character set is Latin-1; ``_latin1`` spells the few typographic characters outside it.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import jinja2

from codes.model import Organisation
from codes.qr import qr_png
from codes.service import IssuedCode
from kit.i18n import DEFAULT_TIME_ZONE, format_datetime, format_day
from kit.web import qr_svg
from protocol.codes import CodeKind

if TYPE_CHECKING:
    from fpdf import FPDF

TEMPLATES = Path(__file__).resolve().parent / "templates"
LANGUAGES = ("fr", "en")
"""French first (the patient's country), then English."""


class Layout(StrEnum):
    """How handouts are laid out on A4 paper."""

    PAGE = "page"
    """One handout per page, to give with a result."""
    GRID = "grid"
    """Eight cards per page (two columns, four rows), to cut apart."""


@dataclass(frozen=True, slots=True)
class Wording:
    """The handout's texts in one language; ``{when}`` and ``{day}`` are filled in."""

    title: str
    why: str
    steps: tuple[str, str, str]
    once: str
    card: str
    valid_until: str
    test_of: str
    qr_label: str


WORDING = {
    "fr": Wording(
        title="Votre code pour TousAntiCovid",
        why="Votre test est positif. En le déclarant dans l’application TousAntiCovid, vous "
        "prévenez les personnes que vous avez croisées de près ces derniers jours, sans que "
        "personne ne sache qui vous êtes.",
        steps=(
            "Ouvrez l’application TousAntiCovid et touchez « Me déclarer ».",
            "Scannez ce QR code avec l’application, ou saisissez le code écrit dessous.",
            "Confirmez la déclaration. C’est tout.",
        ),
        once="Ce code ne sert qu’une fois, et seulement jusqu’à la date indiquée. Ne le "
        "donnez à personne.",
        card="Ouvrez TousAntiCovid, touchez « Me déclarer », scannez ce QR code ou saisissez le "
        "code : vous prévenez anonymement les personnes croisées de près. Une seule fois.",
        valid_until="Valable jusqu’au {when}",
        test_of="Test du {day}",
        qr_label="QR code à scanner avec l’application TousAntiCovid",
    ),
    "en": Wording(
        title="Your code for TousAntiCovid",
        why="Your test is positive. By declaring it in the TousAntiCovid app, you warn the "
        "people you were close to in the last few days, without anyone knowing who you are.",
        steps=(
            "Open the TousAntiCovid app and tap « Me déclarer » (declare myself).",
            "Scan this QR code with the app, or type the code printed below it.",
            "Confirm the declaration. That is all.",
        ),
        once="This code works once, and only until the date shown. Do not give it to anyone.",
        card="Open TousAntiCovid, tap « Me déclarer », scan this QR code or type the code: you "
        "warn the people you were close to, anonymously. Works once.",
        valid_until="Valid until {when}",
        test_of="Test of {day}",
        qr_label="QR code to scan with the TousAntiCovid app",
    ),
}


@dataclass(frozen=True, slots=True)
class Card:
    """One code as a handout shows it: every text already in words, in both languages."""

    code: str
    link: str
    kind: CodeKind
    valid_until: dict[str, str]
    test_of: dict[str, str]


def cards(codes: Sequence[IssuedCode], zone: str = DEFAULT_TIME_ZONE) -> list[Card]:
    """The handouts' contents for ``codes``, dates in words in the time zone ``zone``."""
    made = []
    for issued in codes:
        r = issued.record
        day = date.fromisoformat(r.test_date)
        made.append(
            Card(
                code=r.code,
                link=issued.link,
                kind=r.kind,
                valid_until={
                    lang: WORDING[lang].valid_until.format(
                        when=format_datetime(r.expires_at, lang, zone)
                    )
                    for lang in LANGUAGES
                },
                test_of={
                    lang: WORDING[lang].test_of.format(day=format_day(day, lang))
                    for lang in LANGUAGES
                },
            )
        )
    return made


# --- HTML ------------------------------------------------------------------------------------
@cache
def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@dataclass(frozen=True, slots=True)
class Toolbar:
    """The print and back buttons of a handout shown in the browser (hidden when printed)."""

    print_label: str
    back_label: str
    back_url: str
    nonce: str


def handout_html(
    org: Organisation,
    codes: Sequence[IssuedCode],
    layout: Layout = Layout.PAGE,
    zone: str = DEFAULT_TIME_ZONE,
    toolbar: Toolbar | None = None,
    nonce: str = "",
) -> str:
    """A page to print: the handouts of ``codes`` laid out on A4 (QR codes as inline SVG, so
    the file stands alone and a strict Content-Security-Policy holds)."""
    made = cards(codes, zone)
    qrs = [qr_svg(c.link, WORDING["fr"].qr_label) for c in made]
    return (
        _templates()
        .get_template("codes/handout.html")
        .render(
            org=org,
            cards=list(zip(made, qrs, strict=True)),
            layout=layout.value,
            fr=WORDING["fr"],
            en=WORDING["en"],
            toolbar=toolbar,
            nonce=toolbar.nonce if toolbar else nonce,
        )
    )


# --- PDF -------------------------------------------------------------------------------------
_SPELLED = str.maketrans(
    {
        "’": "'",
        "‘": "'",
        "“": '"',
        "”": '"',
        "…": "...",
        "–": "-",
        "—": "-",
        "\u202f": "\u00a0",  # narrow no-break space (French typography) to no-break space
        "œ": "oe",
        "Œ": "OE",
    }
)


def _latin1(text: str) -> str:
    """``text`` in the standard PDF fonts' character set (Latin-1): typographic quotes and
    dashes spelled plainly; anything else outside it becomes '?' rather than failing."""
    return text.translate(_SPELLED).encode("latin-1", "replace").decode("latin-1")


A4_WIDTH, A4_HEIGHT = 210.0, 297.0
INK = (22, 22, 22)
MUTED = (58, 58, 58)  # 11:1 on white: readable on a photocopy too


def handout_pdf(
    org: Organisation,
    codes: Sequence[IssuedCode],
    layout: Layout = Layout.PAGE,
    zone: str = DEFAULT_TIME_ZONE,
) -> bytes:
    """The handouts of ``codes`` as an A4 PDF: one per page, or eight cards per page."""
    from fpdf import FPDF  # here: fpdf2 takes a while to import, and only PDFs need it

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(_latin1(f"{WORDING['fr'].title} - {org.display_name}"))
    pdf.set_author(_latin1(org.display_name))
    pdf.set_creator("codes (robert-tracing)")
    made = cards(codes, zone)
    if layout is Layout.PAGE:
        for card in made:
            pdf.add_page()
            _page(pdf, org, card)
    else:
        for i, card in enumerate(made):
            slot = i % (GRID_COLUMNS * GRID_ROWS)
            if slot == 0:
                pdf.add_page()
                _cut_lines(pdf)
            x = GRID_MARGIN + (slot % GRID_COLUMNS) * CARD_WIDTH
            y = GRID_MARGIN + (slot // GRID_COLUMNS) * CARD_HEIGHT
            _card(pdf, org, card, x, y)
    return bytes(pdf.output())


def _qr_image(link: str) -> io.BytesIO:
    return io.BytesIO(qr_png(link, box_size=10))


def _page(pdf: FPDF, org: Organisation, card: Card) -> None:
    """One handout on a whole A4 page."""
    fr, en = WORDING["fr"], WORDING["en"]
    left, width = 20.0, A4_WIDTH - 40.0
    pdf.set_text_color(*INK)
    pdf.set_xy(left, 18)
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(width, 7, _latin1(org.display_name), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.set_font("Helvetica", "", 10.5)
    for line in org.address_lines:
        pdf.set_x(left)
        pdf.cell(width, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    rule = pdf.get_y() + 3
    pdf.set_draw_color(*MUTED)
    pdf.line(left, rule, left + width, rule)

    pdf.set_xy(left, rule + 6)
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(width, 9, _latin1(fr.title), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(left)
    pdf.set_font("Helvetica", "", 11)
    pdf.set_text_color(*MUTED)
    pdf.cell(width, 6, _latin1(en.title), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)

    size = 80.0
    top = pdf.get_y() + 3
    pdf.image(_qr_image(card.link), x=(A4_WIDTH - size) / 2, y=top, w=size, h=size)
    pdf.set_xy(left, top + size + 2)
    if card.kind is CodeKind.SHORT:
        pdf.set_font("Courier", "B", 44)
        pdf.cell(width, 17, card.code, align="C", new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.set_font("Courier", "B", 16)
        pdf.cell(width, 9, card.code, align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(left)
    pdf.set_font("Helvetica", "B", 13)
    pdf.cell(width, 7, _latin1(card.valid_until["fr"]), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(left)
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(*MUTED)
    pdf.cell(width, 5, _latin1(card.valid_until["en"]), align="C", new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*INK)

    pdf.set_y(pdf.get_y() + 5)
    _instructions(pdf, fr, left, width, 12.0, 5.8)
    pdf.set_y(pdf.get_y() + 3)
    pdf.set_text_color(*MUTED)
    _instructions(pdf, en, left, width, 10.0, 4.8)
    pdf.set_text_color(*INK)

    pdf.set_xy(left, A4_HEIGHT - 16)
    pdf.set_font("Helvetica", "", 8.5)
    footer = f"{card.test_of['fr']} - {card.test_of['en']}"
    pdf.cell(width, 4, _latin1(footer), align="C")


def _instructions(
    pdf: FPDF, wording: Wording, left: float, width: float, size: float, line: float
) -> None:
    """Why, the three steps, and the single-use warning, in one language."""
    pdf.set_font("Helvetica", "", size)
    pdf.set_x(left)
    pdf.multi_cell(width, line, _latin1(wording.why), new_x="LMARGIN", new_y="NEXT", align="L")
    for number, step in enumerate(wording.steps, start=1):
        pdf.set_x(left)
        pdf.set_font("Helvetica", "B", size)
        pdf.cell(7, line, f"{number}.")
        pdf.set_font("Helvetica", "", size)
        pdf.multi_cell(width - 7, line, _latin1(step), new_x="LMARGIN", new_y="NEXT", align="L")
    pdf.set_x(left)
    pdf.set_font("Helvetica", "B", size)
    pdf.multi_cell(width, line, _latin1(wording.once), new_x="LMARGIN", new_y="NEXT", align="L")


GRID_COLUMNS, GRID_ROWS = 2, 4
GRID_MARGIN = 10.0
CARD_WIDTH = (A4_WIDTH - 2 * GRID_MARGIN) / GRID_COLUMNS
CARD_HEIGHT = (A4_HEIGHT - 2 * GRID_MARGIN) / GRID_ROWS


def _cut_lines(pdf: FPDF) -> None:
    """Dashed lines between the cards, where the scissors go."""
    pdf.set_draw_color(146, 146, 146)
    with pdf.local_context():
        pdf.set_dash_pattern(dash=1.5, gap=1.5)
        for column in range(GRID_COLUMNS + 1):
            x = GRID_MARGIN + column * CARD_WIDTH
            pdf.line(x, GRID_MARGIN, x, A4_HEIGHT - GRID_MARGIN)
        for row in range(GRID_ROWS + 1):
            y = GRID_MARGIN + row * CARD_HEIGHT
            pdf.line(GRID_MARGIN, y, A4_WIDTH - GRID_MARGIN, y)


CARD_PAD = 4.0
CARD_QR = 40.0
CARD_LONG_CODE_PT = 11.0
"""A long code (36 characters of Courier, 0.6 em each) at 11 pt is 84 mm wide: the card's
inner width (87 mm) holds it, large enough to read and type without a magnifier."""


def _card(pdf: FPDF, org: Organisation, card: Card, x: float, y: float) -> None:
    """One card of the grid, its top-left corner at (x, y): who issued it, the QR code, beside
    it until when (French, English) and what to do and why (French, English), the code
    below both across the card."""
    pad = CARD_PAD
    inner = CARD_WIDTH - 2 * pad
    pdf.set_text_color(*INK)
    pdf.set_xy(x + pad, y + pad)
    pdf.set_font("Helvetica", "B", 9)
    pdf.cell(inner, 4, _fit(pdf, org.display_name, inner))
    pdf.set_xy(x + pad, y + pad + 4.2)
    pdf.set_font("Helvetica", "", 7)
    pdf.cell(inner, 3.4, _fit(pdf, ", ".join(org.address_lines), inner))

    qr_top = y + pad + 8.6
    pdf.image(_qr_image(card.link), x=x + pad - 1.5, y=qr_top, w=CARD_QR, h=CARD_QR)
    text_left = x + pad + CARD_QR + 0.5
    text_width = CARD_WIDTH - pad - CARD_QR - 0.5 - pad
    pdf.set_xy(text_left, qr_top + 1.2)
    for style, size, line, colour, text, gap in (
        ("B", 8.0, 3.4, INK, card.valid_until["fr"], 0.2),
        ("", 6.8, 2.9, MUTED, card.valid_until["en"], 1.3),
        ("", 7.2, 3.0, INK, WORDING["fr"].card, 1.0),
        ("", 6.5, 2.7, MUTED, WORDING["en"].card, 0.0),
    ):
        pdf.set_text_color(*colour)
        pdf.set_font("Helvetica", style, size)
        pdf.set_x(text_left)
        pdf.multi_cell(text_width, line, _latin1(text), new_x="LEFT", new_y="NEXT", align="L")
        pdf.set_y(pdf.get_y() + gap)
    pdf.set_text_color(*INK)

    if card.kind is CodeKind.SHORT:
        pdf.set_xy(x + pad, y + CARD_HEIGHT - pad - 9)
        pdf.set_font("Courier", "B", 22)
        pdf.cell(inner, 9, card.code, align="C")
    else:
        pdf.set_xy(x + pad, y + CARD_HEIGHT - pad - 5.5)
        pdf.set_font("Courier", "B", CARD_LONG_CODE_PT)
        pdf.cell(inner, 5.5, card.code, align="C")


def _fit(pdf: FPDF, text: str, width: float) -> str:
    """``text`` cut with an ellipsis to fit ``width`` in the current font."""
    text = _latin1(text)
    if pdf.get_string_width(text) <= width:
        return text
    while text and pdf.get_string_width(text + "...") > width:
        text = text[:-1]
    return text.rstrip() + "..."


def write_handout(
    org: Organisation,
    codes: Sequence[IssuedCode],
    path: Path,
    layout: Layout = Layout.GRID,
    zone: str = DEFAULT_TIME_ZONE,
) -> None:
    """The handouts of ``codes`` in ``path``: PDF if it ends in .pdf, else HTML."""
    if path.suffix.lower() == ".pdf":
        path.write_bytes(handout_pdf(org, codes, layout, zone))
    else:
        path.write_text(handout_html(org, codes, layout, zone), encoding="utf-8")


__all__ = [
    "LANGUAGES",
    "WORDING",
    "Card",
    "Layout",
    "Toolbar",
    "cards",
    "handout_html",
    "handout_pdf",
]
