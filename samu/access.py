"""Who may do what on the board: roles and scopes of people and API keys, pure rules.

| role | scope | may |
|---|---|---|
| ``regulator`` | ``samu:DEP`` | their SAMU's board; post; request and move its transfers |
| ``ars`` | ``region:NN`` | the board of their region; post; transfers of their region |
| ``zone`` | ``zone:CODE`` | the board of their zone; post; transfers of their zone (read) |
| ``national`` | ``national`` | everything; open and close events |
| ``hospital`` | ``finess:NNNNNNNNN`` | read transfers from or to their site; accept, refuse |
| ``admin`` | ``national`` | open and close events, read the board (no posting) |
| ``board`` (API key) | a board scope | the JSON API as that scope (the SAMU call software) |
"""

from __future__ import annotations

from dataclasses import dataclass

from samu.scopes import NATIONAL_SCOPE, Scope, ScopeError, parse_scope, scope_of_departement

REGULATOR, ARS, ZONE, NATIONAL, HOSPITAL, ADMIN, BOARD = (
    "regulator", "ars", "zone", "national", "hospital", "admin", "board",
)  # fmt: skip
BOARD_ROLES = frozenset({REGULATOR, ARS, ZONE, NATIONAL, ADMIN, BOARD})
POSTING_ROLES = frozenset({REGULATOR, ARS, ZONE, NATIONAL, BOARD})
TRANSFER_ROLES = frozenset({REGULATOR, ARS, ZONE, NATIONAL, HOSPITAL, BOARD})
PEOPLE_ROLES = frozenset({REGULATOR, ARS, ZONE, NATIONAL, HOSPITAL, ADMIN})
EXPECTED_LEVEL = {REGULATOR: "samu", ARS: "region", ZONE: "zone", NATIONAL: "national"}


@dataclass(frozen=True, slots=True)
class Access:
    """A role and a scope, and what they allow."""

    role: str
    scope_text: str

    @property
    def finess(self) -> str | None:
        """The establishment of a hospital's ``finess:`` scope."""
        if self.role == HOSPITAL and self.scope_text.startswith("finess:"):
            return self.scope_text.removeprefix("finess:")
        return None

    @property
    def scope(self) -> Scope | None:
        """The board scope (None: no board, a hospital or a bad scope)."""
        if self.role in (NATIONAL, ADMIN):
            return NATIONAL_SCOPE
        if self.role not in BOARD_ROLES:
            return None
        try:
            scope = parse_scope(self.scope_text)
        except ScopeError:
            return None
        expected = EXPECTED_LEVEL.get(self.role)
        return scope if expected is None or scope.level == expected else None

    @property
    def may_read_board(self) -> bool:
        """Whether the board (events and the messages of their scope) is open."""
        return self.scope is not None

    @property
    def may_post(self) -> bool:
        """Whether messages may be posted (from this access's scope)."""
        return self.role in POSTING_ROLES and self.scope is not None

    @property
    def may_open_events(self) -> bool:
        """Whether events may be opened and closed (regulators open theirs too)."""
        return self.role in (NATIONAL, ADMIN, REGULATOR, ARS, ZONE) and self.scope is not None

    def may_open_event_in(self, departement: str) -> bool:
        """Whether an event may be opened in ``departement``."""
        own = self.scope
        return (
            self.may_open_events
            and own is not None
            and own.contains(scope_of_departement(departement))
        )

    def may_read_transfer(self, departement: str, from_finess: str, to_finess: str) -> bool:
        """Whether a transfer request (of ``departement``, between two establishments) is
        visible: the establishments' staff, and the scopes containing the département."""
        if self.role == HOSPITAL:
            return self.finess is not None and self.finess in (from_finess, to_finess)
        own = self.scope
        if own is None or self.role not in TRANSFER_ROLES:
            return False
        return own.contains(scope_of_departement(departement))

    def may_request_transfer(self, departement: str) -> bool:
        """Whether a transfer may be requested in ``departement`` (regulators and ARS of it,
        the national level)."""
        own = self.scope
        return (
            self.role in (REGULATOR, ARS, NATIONAL, BOARD)
            and own is not None
            and own.contains(scope_of_departement(departement))
        )

    def may_move_transfer(
        self, departement: str, from_finess: str, to_finess: str, accept_or_refuse: bool
    ) -> bool:
        """Whether the status of a transfer may be changed: the receiving hospital accepts or
        refuses; the regulators of its département (and above) move it otherwise."""
        if self.role == HOSPITAL:
            return accept_or_refuse and self.finess == to_finess
        return self.may_request_transfer(departement)
