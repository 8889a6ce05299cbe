"""Who may see and do what in Contact Covid (health.md 3.5), as pure rules.

- ``doctor`` (scope ``rpps:<n>``), level 1: opens cases, sees their own patients' cases;
- ``cpam_agent``, ``cpam_doctor`` (``dep:NN`` or national), level 2: every case of their
  scope at level 2 or 3, the queue, calls, notifications; they also check sick leaves;
- ``ars_agent`` (``dep:NN`` or national), level 3: clusters and escalated cases, by record
  number, without names;
- ``pharmacist`` and ``biologist`` (``finess:<n>``): check and consume a prescription
  (masks; PCR test);
- ``spf_analyst``: the pseudonymised export only;
- ``admin``: accounts and the purge; no record.
"""

from __future__ import annotations

from dataclasses import dataclass

from contact.model import Case, PrescriptionKind
from contact.rules import Level

DOCTOR, CPAM_AGENT, CPAM_DOCTOR, ARS_AGENT = "doctor", "cpam_agent", "cpam_doctor", "ars_agent"
PHARMACIST, BIOLOGIST, SPF_ANALYST, ADMIN = "pharmacist", "biologist", "spf_analyst", "admin"
CPAM = frozenset({CPAM_AGENT, CPAM_DOCTOR})
CASE_ROLES = frozenset({DOCTOR, CPAM_AGENT, CPAM_DOCTOR, ARS_AGENT})
CHECK_ROLES = frozenset({PHARMACIST, BIOLOGIST, CPAM_AGENT, CPAM_DOCTOR})
EXPORT_ROLES = frozenset({SPF_ANALYST})
ROLES = CASE_ROLES | CHECK_ROLES | EXPORT_ROLES | {ADMIN}

CONSUMES: dict[str, frozenset[PrescriptionKind]] = {
    PHARMACIST: frozenset({PrescriptionKind.MASKS}),
    BIOLOGIST: frozenset({PrescriptionKind.PCR_TEST}),
    CPAM_AGENT: frozenset({PrescriptionKind.SICK_LEAVE}),
    CPAM_DOCTOR: frozenset({PrescriptionKind.SICK_LEAVE}),
}
"""Who marks which prescription used: the pharmacy the masks, the lab the test, the
health-insurance fund the sick leave."""


@dataclass(frozen=True, slots=True)
class Access:
    """A signed-in person (or API key): name, role and scope."""

    name: str
    role: str
    scope: str = ""

    @property
    def department(self) -> str | None:
        """The département of a ``dep:NN`` scope (None: national)."""
        return self.scope.removeprefix("dep:") if self.scope.startswith("dep:") else None

    @property
    def level(self) -> Level | None:
        """The level this role works at."""
        if self.role == DOCTOR:
            return Level.DOCTOR
        if self.role in CPAM:
            return Level.CPAM
        if self.role == ARS_AGENT:
            return Level.ARS
        return None

    def _in_scope(self, case: Case) -> bool:
        return self.department is None or case.department == self.department

    def may_read(self, case: Case) -> bool:
        """Whether this access may open the case's record."""
        if self.role == DOCTOR:
            return case.doctor == self.name
        if self.role in CPAM:
            return case.level >= Level.CPAM and self._in_scope(case)
        if self.role == ARS_AGENT:
            return case.level >= Level.ARS and self._in_scope(case)
        return False

    def may_edit(self, case: Case) -> bool:
        """Whether this access may add contacts, call, notify, change the status."""
        if not self.may_read(case):
            return False
        if self.role == DOCTOR:
            return case.level == Level.DOCTOR
        return True

    @property
    def sees_names(self) -> bool:
        """Level 3 sees record numbers without names (health.md 3.4)."""
        return self.role in (DOCTOR, CPAM_AGENT, CPAM_DOCTOR)

    def may_consume(self, kind: PrescriptionKind) -> bool:
        """Whether this access marks prescriptions of ``kind`` used."""
        return kind in CONSUMES.get(self.role, frozenset())


RELATION_LABELS = {
    "household": "Same household",
    "family": "Family",
    "work": "Work",
    "school": "School",
    "friend": "Friend",
    "care": "Care",
    "travel": "Travel",
    "other": "Other",
}
"""How the contact form names each relation."""
