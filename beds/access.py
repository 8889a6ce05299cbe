"""Who may see and change what: least privilege by role and scope, pure rules.

People and API keys carry a role and a scope (``kit.auth``):

| role | scope | may |
|---|---|---|
| ``staff`` | ``finess:<site>`` | see and update the units of their establishment |
| ``updater`` (API key) | ``finess:<site>`` | the same, for the hospital's own system |
| ``samu`` | ``dep:NN`` or ``reg:NN`` | find a free bed anywhere; dashboards of their scope |
| ``ars`` | ``reg:NN`` | dashboards and units (read) of their region |
| ``national`` | ``national`` | everything, and manage establishments and units |
| ``reader`` (API key) | any | the tension figures (the SAMU board) |
"""

from __future__ import annotations

from dataclasses import dataclass

from beds.territory import FRANCE, Territory, TerritoryError, contains, parse_territory

STAFF, UPDATER, SAMU, ARS, NATIONAL, READER = (
    "staff",
    "updater",
    "samu",
    "ars",
    "national",
    "reader",
)
PEOPLE_ROLES = frozenset({STAFF, SAMU, ARS, NATIONAL})
DASHBOARD_ROLES = frozenset({SAMU, ARS, NATIONAL, READER})
EDIT_ROLES = frozenset({STAFF, UPDATER, NATIONAL})
FIND_ROLES = frozenset({SAMU, ARS, NATIONAL})


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
    def territory(self) -> Territory | None:
        """The territory whose dashboards this access may see (None: none)."""
        if self.role == NATIONAL or (self.role == READER and self.scope in ("", "national")):
            return parse_territory(FRANCE)
        if self.role in DASHBOARD_ROLES and (self.scope.startswith(("reg:", "dep:"))):
            try:
                return parse_territory(self.scope)
            except TerritoryError:
                return None
        return None

    def may_see_territory(self, territory: Territory) -> bool:
        """Whether the dashboards of ``territory`` are open to this access."""
        own = self.territory
        if own is None:
            return False
        if own.level == "fr":
            return True
        if territory.level == "fr":
            return False
        if own.level == "reg" and territory.level == "reg":
            return own.key == territory.key
        if territory.level == "dep":
            return contains(own, territory.key)
        return False

    def may_read(self, finess: str, departement: str) -> bool:
        """Whether the units of an establishment (of ``departement``) are visible."""
        if self.role in (STAFF, UPDATER):
            return self.finess == finess
        own = self.territory
        return own is not None and contains(own, departement)

    def may_edit(self, finess: str) -> bool:
        """Whether the counts of an establishment's units may be updated."""
        if self.role == NATIONAL:
            return True
        return self.role in (STAFF, UPDATER) and self.finess == finess

    @property
    def may_find(self) -> bool:
        """Whether the nearest-bed search is open (regulators, ARS, national)."""
        return self.role in FIND_ROLES
