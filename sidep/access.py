"""Who may see and send what in SI-DEP: least privilege by role and scope, pure rules.

| role | scope | may |
|---|---|---|
| ``biologist`` | ``finess:<lab>`` | their lab's results (identifying); the antigen form |
| ``tester`` | ``finess:<site>`` | a pharmacist or nurse: enter antigen results of their site |
| ``doctor`` | any | find a patient's results by NIR, or by name and birth date |
| ``cpam_agent`` | any | search every result (identifying): case investigation |
| ``spf_analyst`` | any | pseudonymised results only (no name, NIR, birth date, contact) |
| ``admin`` | any | everything |
| ``lab`` (API key) | ``finess:<lab>`` | send messages (HTTP intake) for their lab |
| ``event-reader`` (API key) | any | the event feed (``kit.events``) |
"""

from __future__ import annotations

from dataclasses import dataclass

BIOLOGIST, TESTER, DOCTOR, CPAM_AGENT, SPF_ANALYST, ADMIN = (
    "biologist",
    "tester",
    "doctor",
    "cpam_agent",
    "spf_analyst",
    "admin",
)
LAB_KEY = "lab"
PEOPLE_ROLES = frozenset({BIOLOGIST, TESTER, DOCTOR, CPAM_AGENT, SPF_ANALYST, ADMIN})
SEARCH_ROLES = frozenset({BIOLOGIST, DOCTOR, CPAM_AGENT, SPF_ANALYST, ADMIN})
FORM_ROLES = frozenset({BIOLOGIST, TESTER, ADMIN})
INTAKE_KEY_ROLES = frozenset({LAB_KEY, ADMIN})


@dataclass(frozen=True, slots=True)
class Access:
    """A role and a scope, and what they allow."""

    role: str
    scope: str = ""

    @property
    def finess(self) -> str | None:
        """The establishment of a ``finess:`` scope."""
        return self.scope.removeprefix("finess:") if self.scope.startswith("finess:") else None

    @property
    def identifying(self) -> bool:
        """Whether names, NIR, birth dates and contacts are visible."""
        return self.role in (BIOLOGIST, DOCTOR, CPAM_AGENT, ADMIN)

    @property
    def lab_filter(self) -> str | None:
        """The only lab whose results are visible (None: every lab)."""
        return self.finess if self.role == BIOLOGIST else None

    @property
    def needs_patient(self) -> bool:
        """Whether a search must name a patient (a doctor does not browse)."""
        return self.role == DOCTOR

    def may_search(self) -> bool:
        return self.role in SEARCH_ROLES and (self.role != BIOLOGIST or self.finess is not None)

    def may_send_for(self, lab: str) -> bool:
        """Whether results of ``lab`` may be sent (intake keys, the antigen form)."""
        if self.role == ADMIN:
            return True
        return self.role in (BIOLOGIST, TESTER, LAB_KEY) and self.finess == lab


OPERATOR = Access(ADMIN, "")
"""The command line's access (the machine's operator)."""
