"""The event's place on a map of metropolitan France: its département filled, the others
faded (outlines from ``data/france_departements_map.json``, origin in ``data/README.md``).
Overseas départements are not drawn: their events show their coordinates only."""

from __future__ import annotations

import json
from functools import cache

from markupsafe import Markup

from samu.scopes import DATA


@cache
def _outlines() -> tuple[str, dict[str, dict[str, str]]]:
    loaded = json.loads((DATA / "france_departements_map.json").read_text(encoding="utf-8"))
    return str(loaded["viewBox"]), dict(loaded["departements"])


def departement_map(departement: str, label: str) -> Markup | None:
    """An SVG map with ``departement`` filled (None when it is not drawn: overseas)."""
    view_box, shapes = _outlines()
    if departement not in shapes:
        return None
    paths = []
    for code, shape in shapes.items():
        here = code == departement
        paths.append(
            Markup(
                '<path d="{d}" fill="{fill}" stroke="#555" stroke-width="{w}"{id}></path>'
            ).format(
                d=shape["d"],
                fill="#e1000f" if here else "#eef3fb",
                w="1" if here else "0.3",
                id=Markup(' id="event-departement"') if here else "",
            )
        )
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="{vb}" role="img" class="map" '
        'aria-label="{label}">{paths}</svg>'
    ).format(vb=view_box, label=label, paths=Markup("").join(paths))
