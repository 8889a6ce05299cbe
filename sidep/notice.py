"""The result notice of a positive: what the patient receives (PDF, e-mail, SMS).

It says the result is positive, what to do now (isolate, tell the people you met, watch for
signs of gravity), and, when a code could be issued, shows the QR code to declare the test in
TousAntiCovid with the long code in clear below it; when the citizens service answered, the
test sites nearest the person's postcode (for the people they met) and the link to all.
French only, as the patients' letters were; the standard PDF fonts (Latin-1), nothing
embedded. Pure: no I/O (the sites are looked up before, by ``sidep.sites``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

import qrcode
import qrcode.constants

from sidep.issuer import IssuedCode
from sidep.sites import NearbySites, TestSite

TITLE = "Résultat de votre test de dépistage de la COVID-19"
POSITIVE = "Votre test est POSITIF à la COVID-19."
ADVICE = (
    "Isolez-vous dès maintenant, pendant 7 jours pleins à compter de la date du prélèvement "
    "(ou de vos premiers symptômes), et jusqu'à 48 heures sans fièvre.",
    "Portez un masque chirurgical en présence d'autres personnes, y compris à la maison, et "
    "lavez-vous les mains souvent.",
    "Préparez la liste des personnes que vous avez croisées depuis 48 heures avant vos "
    "symptômes (ou le prélèvement) : l'Assurance Maladie va vous appeler pour les prévenir.",
    "Appelez le 15 si vous avez du mal à respirer.",
)
DECLARE = (
    "Déclarez votre test dans l'application TousAntiCovid : ouvrez-la, touchez « Me "
    "déclarer », scannez ce QR code (ou saisissez le code ci-dessous). C'est anonyme et ne "
    "sert qu'une fois."
)
NO_CODE = "Aucun code TousAntiCovid n'a pu être émis pour ce prélèvement."
SMS_TEXT = (
    "SI-DEP : votre test du {day} est POSITIF. Isolez-vous 7 jours. Declarez-le dans "
    "TousAntiCovid avec le code {code}. Info : ameli.fr"
)
SMS_WITHOUT_CODE = "SI-DEP : votre test du {day} est POSITIF. Isolez-vous 7 jours. Info : ameli.fr"
SITES_TITLE = "Où se faire tester près de chez vous"
SITES_INTRO = (
    "Les personnes que vous avez croisées peuvent se faire dépister, par exemple ici (les "
    "plus proches de votre code postal) :"
)
SITES_ALL = "Tous les lieux de dépistage près de chez vous : {link}"
SMS_SITES = " Lieux de test : {link}"


@dataclass(frozen=True, slots=True)
class NoticeText:
    """Who and what the notice is about (names as the lab sent them)."""

    name: str
    sampled_on: date
    lab: str
    nearby: NearbySites | None = None


def site_line(site: TestSite) -> str:
    """A test site in one line: name, address, distance."""
    place = ", ".join(p for p in (site.address, f"{site.postcode} {site.commune}".strip()) if p)
    distance = "" if site.distance_km is None else f" ({site.distance_km:.1f} km)".replace(".", ",")
    return f"{site.name}, {place}{distance}"


def sites_lines(nearby: NearbySites | None) -> list[str]:
    """The notice's paragraph on where to get tested (none without the citizens service)."""
    if nearby is None:
        return []
    lines = [SITES_TITLE]
    if nearby.sites:
        lines += [SITES_INTRO, *(f"- {site_line(site)}" for site in nearby.sites)]
    return [*lines, SITES_ALL.format(link=nearby.link)]


def _latin1(text: str) -> str:
    spelled = text.translate({0x2019: "'", 0x00AB: '"', 0x00BB: '"', 0x202F: " ", 0x0153: "oe"})
    return spelled.encode("latin-1", "replace").decode("latin-1")


def _qr_png(link: str) -> bytes:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4)
    qr.add_data(link)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image().save(out)
    return out.getvalue()


def sms_text(sampled_on: date, code: IssuedCode | None, nearby: NearbySites | None = None) -> str:
    """The SMS of a positive (ASCII: one SMS alphabet), with the link to the test sites near
    the person when the citizens service is configured."""
    day = sampled_on.strftime("%d/%m/%Y")
    text = (
        SMS_WITHOUT_CODE.format(day=day)
        if code is None
        else SMS_TEXT.format(day=day, code=code.code)
    )
    if nearby is not None and nearby.link.isascii():
        text += SMS_SITES.format(link=nearby.link)
    return text


def email_text(text: NoticeText, code: IssuedCode | None) -> str:
    """The e-mail's body (the PDF is attached)."""
    lines = [
        f"Bonjour {text.name},",
        "",
        f"{POSITIVE} (prélèvement du {text.sampled_on.strftime('%d/%m/%Y')}).",
        "",
        *(f"- {advice}" for advice in ADVICE),
        "",
        DECLARE if code else NO_CODE,
    ]
    if code:
        lines += ["", f"Code : {code.code}"]
    sites = sites_lines(text.nearby)
    if sites:
        lines += ["", *sites]
    lines += ["", "Le document joint reprend ces informations."]
    return "\n".join(lines)


def notice_pdf(text: NoticeText, code: IssuedCode | None) -> bytes:
    """The notice on one A4 page."""
    from fpdf import FPDF  # here: fpdf2 takes a while to import

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(_latin1(TITLE))
    pdf.set_creator("SI-DEP (robert-tracing)")
    pdf.add_page()
    left, width = 20.0, 170.0
    pdf.set_xy(left, 18)
    pdf.set_font("Helvetica", "B", 16)
    pdf.multi_cell(width, 8, _latin1(TITLE), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    pdf.set_x(left)
    pdf.cell(width, 6, _latin1(text.name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_x(left)
    day = text.sampled_on.strftime("%d/%m/%Y")
    pdf.cell(width, 6, _latin1(f"Prélèvement du {day}, laboratoire {text.lab}"), new_x="LMARGIN")
    pdf.set_xy(left, pdf.get_y() + 10)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(width, 8, _latin1(POSITIVE), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    for advice in ADVICE:
        pdf.set_x(left)
        pdf.multi_cell(width, 5.5, _latin1(f"- {advice}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(left, pdf.get_y() + 4)
    if code is None:
        pdf.multi_cell(width, 5.5, _latin1(NO_CODE), new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.multi_cell(width, 5.5, _latin1(DECLARE), new_x="LMARGIN", new_y="NEXT")
        size = 70.0
        top = pdf.get_y() + 3
        pdf.image(io.BytesIO(_qr_png(code.link)), x=(210 - size) / 2, y=top, w=size, h=size)
        pdf.set_xy(left, top + size + 2)
        pdf.set_font("Courier", "B", 13)
        pdf.cell(width, 8, code.code, align="C", new_x="LMARGIN", new_y="NEXT")
        pdf.set_x(left)
        pdf.set_font("Helvetica", "", 10)
        until = code.expires_at.strftime("%d/%m/%Y")
        pdf.cell(width, 6, _latin1(f"Code valable jusqu'au {until}"), align="C",
                 new_x="LMARGIN", new_y="NEXT")  # fmt: skip
    sites = sites_lines(text.nearby)
    if sites:
        title, *rest = sites
        pdf.set_xy(left, pdf.get_y() + 4)
        pdf.set_font("Helvetica", "B", 11)
        pdf.cell(width, 6, _latin1(title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", "", 10)
        for line in rest:
            pdf.set_x(left)
            pdf.multi_cell(width, 5, _latin1(line), align="L", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
