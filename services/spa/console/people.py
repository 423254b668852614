"""The person signed in to the console: who they are, their roles and what each role is bound to.

Roles are the console's own; an identity provider's are mapped to them in the settings. A call
handler and a locality coordinator are bound to localities (``*`` for the whole county), a team
member to teams. The person acts as a principal of their own, so that the service functions the
API uses decide what they may see and every audit record names them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from services.shared.auth import Principal


class Role(StrEnum):
    CALL_HANDLER = "call_handler"
    TEAM_MEMBER = "team_member"
    CRU = "cru"
    COORDINATOR = "coordinator"
    COMMISSIONER = "commissioner"
    ADMIN = "admin"


ROLE_NAMES = {
    Role.CALL_HANDLER: "Call handler",
    Role.TEAM_MEMBER: "Team member",
    Role.CRU: "Central Referral Unit",
    Role.COORDINATOR: "Locality coordinator",
    Role.COMMISSIONER: "Commissioner",
    Role.ADMIN: "Administrator",
}

# What each role may do, in the scopes the services already check. A person's tokens for teams
# and routing carry only their roles' scopes.
ROLE_SCOPES: dict[Role, frozenset[str]] = {
    Role.CALL_HANDLER: frozenset({"queue:work", "referrals:read"}),
    Role.TEAM_MEMBER: frozenset({"caseload:manage", "directory:read", "referrals:read"}),
    Role.CRU: frozenset({"caseload:manage", "directory:read", "referrals:read"}),
    Role.COORDINATOR: frozenset({"queue:work", "referrals:read", "directory:read"}),
    Role.COMMISSIONER: frozenset({"reports:read"}),
    Role.ADMIN: frozenset({"subscriptions:manage", "rules:admin", "directory:read"}),
}

# The prefix of a person's principal, which no registered client's id can take (client ids are
# letters, digits and hyphens).
PERSON_PREFIX = "person:"


@dataclass(frozen=True, slots=True)
class Person:
    person_id: str
    name: str
    roles: frozenset[Role]
    localities: frozenset[str] = field(default_factory=frozenset)
    teams: frozenset[str] = field(default_factory=frozenset)

    @property
    def principal_id(self) -> str:
        return PERSON_PREFIX + self.person_id

    def has(self, role: Role) -> bool:
        return role in self.roles

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset().union(*(ROLE_SCOPES[role] for role in self.roles))

    def principal(self) -> Principal:
        """The person as the service functions take a caller: their roles' scopes, their
        localities and teams."""
        claims: dict[str, Any] = {
            "localities": sorted(self.localities),
            "teams": sorted(self.teams),
        }
        return Principal(client_id=self.principal_id, scopes=self.scopes, claims=claims)

    def as_json(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "name": self.name,
            "roles": sorted(self.roles),
            "localities": sorted(self.localities),
            "teams": sorted(self.teams),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Person:
        return cls(
            person_id=data["person_id"],
            name=data["name"],
            roles=frozenset(Role(role) for role in data["roles"]),
            localities=frozenset(data.get("localities", ())),
            teams=frozenset(data.get("teams", ())),
        )
