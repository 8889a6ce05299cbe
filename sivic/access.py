"""Who may see and change what: least privilege by role and scope, pure rules.

- ``staff`` (people), scope ``finess:<site>``: register patients at their establishment,
  transfer and discharge those who lie there, see them;
- ``hospital`` (API key), scope ``finess:<site>``: the same, for the hospital's own system;
- ``ars``, scope ``reg:NN``: patients and counts of their region (read);
- ``national``: every patient and count (read), events;
- ``admin``: everything, and events;
- ``board-reader`` (API key), scope ``national``, empty or ``reg:NN``: the counts only (the
  SAMU board).
"""

from __future__ import annotations

from dataclasses import dataclass

from sivic.territory import departements, region_of

STAFF, HOSPITAL, ARS, NATIONAL, ADMIN, BOARD = (
    "staff",
    "hospital",
    "ars",
    "national",
    "admin",
    "board-reader",
)
PEOPLE_ROLES = frozenset({STAFF, ARS, NATIONAL, ADMIN})
PATIENT_ROLES = frozenset({STAFF, HOSPITAL, ARS, NATIONAL, ADMIN})
WRITE_ROLES = frozenset({STAFF, HOSPITAL, ADMIN})
COUNT_ROLES = frozenset({BOARD, ARS, NATIONAL, ADMIN})
EVENT_ROLES = frozenset({NATIONAL, ADMIN})


@dataclass(frozen=True, slots=True)
class Access:
    """A role and a scope, and what they allow."""

    role: str
    scope: str

    @property
    def finess(self) -> str | None:
        """The establishment of a ``finess:`` scope."""
        return self.scope.removeprefix("finess:") if self.scope.startswith("finess:") else None

    @property
    def region(self) -> str | None:
        """The region of a ``reg:`` scope."""
        return self.scope.removeprefix("reg:") if self.scope.startswith("reg:") else None

    @property
    def everywhere(self) -> bool:
        """Whether the whole country is in scope."""
        if self.role in (NATIONAL, ADMIN):
            return True
        return self.role == BOARD and self.scope in ("", "national")

    def may_write(self, finess: str) -> bool:
        """Whether a patient may be registered at (or moved from) ``finess``."""
        if self.role == ADMIN:
            return True
        return self.role in (STAFF, HOSPITAL) and self.finess == finess

    def may_read(self, finess: str, dep: str) -> bool:
        """Whether the patients lying at ``finess`` (in ``dep``) may be seen."""
        if self.role in (STAFF, HOSPITAL):
            return self.finess == finess
        return self.may_count(dep) and self.role != BOARD

    def may_count(self, dep: str) -> bool:
        """Whether the counts of ``dep`` may be read."""
        if self.role not in COUNT_ROLES:
            return False
        if self.everywhere:
            return True
        return self.region is not None and dep in departements() and region_of(dep) == self.region
