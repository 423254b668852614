"""The demo staff of `make run` and the tests: fictional people, one or more for each role,
bound to the demo county's localities and teams (services/teams/demo_directory.yaml). They sign
in with the password the settings give, and only where the settings allow the demo sign-in at
all (plain HTTP on the loopback interface)."""

from __future__ import annotations

from services.shared.auth import ALL_LOCALITIES
from services.spa.console.people import Person, Role

DEMO_STAFF: dict[str, Person] = {
    person.person_id: person
    for person in (
        Person(
            "north.handler", "Nia North (call handler)", frozenset({Role.CALL_HANDLER}),
            localities=frozenset({"north"}),
        ),
        Person(
            "south.handler", "Sam South (call handler)", frozenset({Role.CALL_HANDLER}),
            localities=frozenset({"south"}),
        ),
        Person(
            "county.handler", "Casey County (call handler)", frozenset({Role.CALL_HANDLER}),
            localities=frozenset({ALL_LOCALITIES}),
        ),
        Person(
            "lit.north", "Lee Team (north locality team)", frozenset({Role.TEAM_MEMBER}),
            teams=frozenset({"lit-north", "plmdt-north-1", "plmdt-north-2"}),
        ),
        Person(
            "lit.south", "Lou Team (south locality team)", frozenset({Role.TEAM_MEMBER}),
            teams=frozenset({"lit-south", "plmdt-south-1", "plmdt-south-2", "plmdt-south-3"}),
        ),
        Person(
            "cru.officer", "Cam Ward (Central Referral Unit)", frozenset({Role.CRU}),
            teams=frozenset({"cru-county"}),
        ),
        Person(
            "north.coordinator", "Noor Lead (north coordinator)", frozenset({Role.COORDINATOR}),
            localities=frozenset({"north"}),
        ),
        Person("commissioner", "Kit Planner (commissioner)", frozenset({Role.COMMISSIONER})),
        Person("admin", "Ash Admin (administrator)", frozenset({Role.ADMIN})),
    )
}  # fmt: skip
