"""Mes Conseils Covid as a static site: ``robert advice export DIR``.

The issue asks for the advice as a static site that any web server (or a USB stick) can hold:
HTML, its inline style and script, and the rules. The export renders the same template, rules
and script as the served page (``citizens.web.advice_context``), once per language, and writes:

- ``index.html`` (French) and ``en.html`` (English), each linking to the other;
- ``advice-rules.json`` and ``advice-cases.json``, the published rules and their shared cases.

A static file has no response headers, so its Content-Security-Policy is a ``<meta>`` element,
first in ``<head>``, allowing exactly the inline style and scripts of the page by their SHA-256
(no nonce: a nonce written into a file would be the same for every visitor). The policy is
that of the served page, less what a ``<meta>`` cannot carry (``frame-ancestors``: set it in
the hosting server's headers if framing must be refused). No request can leave the page:
``default-src 'none'`` with nothing else allowed to connect, and the form never submits.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from pathlib import Path

from markupsafe import Markup

from citizens.advice import CASES, RULES, shipped_rules
from citizens.geo import france_map
from citizens.web import STATIC, advice_context

PAGES = {"fr": "index.html", "en": "en.html"}
INLINE = re.compile(r"<(script|style)([^>]*)>(.*?)</\1>", re.DOTALL)


def page_policy(html: str) -> str:
    """The CSP of an exported page: its inline style and scripts allowed by their hashes."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for tag, attributes, body in INLINE.findall(html):
        if 'type="application/json"' in attributes:
            continue  # data, never executed
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode()
        hashes[tag].append(f"'sha256-{digest}'")
    return "; ".join(
        [
            "default-src 'none'",
            "style-src " + " ".join(hashes["style"]),
            "script-src " + " ".join(hashes["script"]),
            "img-src data:",
            "form-action 'none'",
            "base-uri 'none'",
        ]
    )


def render_page(language: str, sites_url: str) -> str:
    """The advice page of ``language`` as a self-contained static file."""
    from citizens.app import new_pages

    pages = new_pages()
    nonce = secrets.token_urlsafe(16)  # only to render the template; removed below

    def gettext(message: str) -> str:
        return pages.gettext(language, message)

    values = {
        # the layout's variables (kit/base.html), for a visitor nobody knows
        "service_title": pages.title,
        "lang": language,
        "languages": pages.languages,
        "time_zone": pages.time_zone,
        "csp_nonce": nonce,
        "user": None,
        "csrf_token": "",
        "logout_url": "",
        "flashes": [],
        "nav": [],
        "request_path": PAGES[language],
        "language_links": PAGES,
        "home_url": sites_url.rsplit("/sites/", 1)[0] + "/",
        **advice_context(
            shipped_rules(),
            france_map(),
            (STATIC / "advice.js").read_text(encoding="utf-8"),
            gettext,
            sites_url=f"{sites_url}?lang={language}",
            rules_url=RULES.name,
            cases_url=CASES.name,
        ),
    }
    html = pages.environment(language).get_template("citizens/advice.html").render(values)
    html = html.replace(f' nonce="{nonce}"', "")
    meta = Markup('<meta http-equiv="Content-Security-Policy" content="{}">').format(
        page_policy(html)
    )
    return html.replace('<meta charset="utf-8">', f'<meta charset="utf-8">\n{meta}', 1)


def export_advice(directory: Path, sites_url: str) -> list[Path]:
    """Write the static advice site into ``directory``; the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for language, name in PAGES.items():
        path = directory / name
        path.write_text(render_page(language, sites_url), encoding="utf-8")
        written.append(path)
    for source in (RULES, CASES):
        target = directory / source.name
        target.write_bytes(source.read_bytes())
        written.append(target)
    return written
