"""The daily national bulletin of hospital tension: CSV (one line per territory) and PDF
(fpdf2: the national figures, the thresholds, a table by region and one by département)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from fpdf import FPDF

from beds.service import Dashboard, iso_utc
from beds.tension import Tension, Thresholds

COLUMNS = (
    "date",
    "level",
    "code",
    "name",
    "covid_critical",
    "initial_capacity",
    "tension_rate",
    "tension_level",
    "occupied",
    "available",
    "installed",
    "surge",
    "occupancy",
    "units",
    "stale_units",
)


def _rate(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@dataclass(frozen=True, slots=True)
class Bulletin:
    """France by region (``regions``) and by département (``departements``)."""

    regions: Dashboard
    departements: Dashboard
    thresholds: Thresholds

    @property
    def filename(self) -> str:
        """``bulletin-tension-YYYY-MM-DD``."""
        return f"bulletin-tension-{self.regions.as_of.date().isoformat()}"

    def lines(self) -> list[tuple[str, str, str, Tension]]:
        """(level, code, name, figures): France, then regions, then départements."""
        found = [("fr", "fr", "France", self.regions.total)]
        found += [("reg", r.code, r.name, r.tension) for r in self.regions.rows]
        found += [("dep", r.code, r.name, r.tension) for r in self.departements.rows]
        return found

    def csv(self) -> str:
        """The bulletin as CSV (``,``, UTF-8, rates as fractions)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        day = self.regions.as_of.date().isoformat()
        for level, code, name, t in self.lines():
            writer.writerow(
                [
                    day,
                    level,
                    code,
                    name,
                    t.covid_critical,
                    t.initial_capacity,
                    _rate(t.tension_rate),
                    self.thresholds.level(t.tension_rate).value,
                    t.occupied,
                    t.available,
                    t.installed,
                    t.surge,
                    _rate(t.occupancy),
                    t.units,
                    t.stale_units,
                ]
            )
        return out.getvalue()

    def pdf(self) -> bytes:
        """The bulletin as an A4 PDF."""
        doc = FPDF(format="A4")
        doc.set_title(f"Tension hospitalière – {self.regions.as_of.date().isoformat()}")
        doc.set_creator("robert beds")
        doc.add_page()
        doc.set_font("Helvetica", "B", 16)
        doc.cell(0, 10, "Bulletin national de tension hospitalière", new_x="LMARGIN", new_y="NEXT")
        doc.set_font("Helvetica", "", 10)
        t = self.regions.total
        rate = t.tension_rate
        lines = [
            f"Situation au {iso_utc(self.regions.as_of)}",
            f"Patients COVID-19 en soins critiques : {t.covid_critical}",
            f"Capacité initiale en réanimation : {t.initial_capacity}",
            "Taux de tension : " + ("–" if rate is None else f"{rate * 100:.1f} %"),
            f"Lits occupés : {t.occupied} ; lits disponibles : {t.available}; lits "
            f"supplémentaires ouverts : {t.surge}",
            f"Unités : {t.units}, dont {t.stale_units} sans mise à jour récente",
            f"Seuils : alerte {self.thresholds.alert * 100:.0f} %, crise "
            f"{self.thresholds.crisis * 100:.0f} % (le taux rapporte les patients COVID-19 à la "
            "capacité initiale : il peut dépasser 100 %)",
        ]
        for line in lines:
            doc.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
        for title, rows in (
            ("Par région", self.regions.rows),
            ("Par département", self.departements.rows),
        ):
            doc.ln(3)
            doc.set_font("Helvetica", "B", 12)
            doc.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
            doc.set_font("Helvetica", "", 9)
            with doc.table(col_widths=(60, 22, 22, 22, 22, 22), text_align="RIGHT") as table:
                table.row(["Territoire", "COVID", "Cap. init.", "Tension", "Occupés", "Dispo."])
                for r in rows:
                    rt = r.tension.tension_rate
                    table.row(
                        [
                            r.name,
                            str(r.tension.covid_critical),
                            str(r.tension.initial_capacity),
                            "–" if rt is None else f"{rt * 100:.0f} %",
                            str(r.tension.occupied),
                            str(r.tension.available),
                        ]
                    )
        return bytes(doc.output())
