"""How the services meet when they run in one process: the composition root.

Services never import each other; what one needs of another is a small interface it declares
(the ROBERT server's ``server.codegate.CodeGate``), which another service's object happens to
fulfil. In production the interfaces are HTTP clients between processes; here, for
``robert dev`` and for ``robert serve`` on the embedded default, the objects are handed over
directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from codes import app as codes_app
from codes.service import CodeService
from codes.settings import Settings as CodesSettings
from server.codegate import CodeGate, HttpCodeGate
from server.settings import Settings as RobertSettings


def codes_settings(robert: RobertSettings) -> CodesSettings:
    """The code service's settings (``CODES_*``), its data directory following the ROBERT
    server's unless ``CODES_DATA_DIR`` says otherwise."""
    return CodesSettings.beside(robert.data_dir)


def in_process_codes(robert: RobertSettings, clock: Callable[[], float] = time.time) -> CodeService:
    """The code service in this process (not yet opened: the ROBERT application opens it)."""
    return codes_app.new_service(codes_settings(robert), clock)


def code_gate(robert: RobertSettings, clock: Callable[[], float] = time.time) -> CodeGate:
    """How the ROBERT server reaches the code service: over HTTP when ``ROBERT_CODES_URL``
    is set, else in this process."""
    if robert.codes_url:
        return HttpCodeGate(robert.codes_url, robert.codes_api_key)
    return in_process_codes(robert, clock)
