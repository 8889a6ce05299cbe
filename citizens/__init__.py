"""Services for citizens: Mes Conseils Covid (advice computed in the browser from published
rules), the map of test sites (open-data CSV, search around a place, embeddable), and the
directory of e-health tools (publishers' self-declarations, moderated).

Pure modules (``advice``, ``geo``, ``places``, ``sites``, ``sitemap``, ``directory``) do no I/O
beyond reading their data files; ``store`` keeps the directory; ``web`` and its siblings are
thin handlers; ``app`` builds the application mounted at ``/citizens``.
"""
