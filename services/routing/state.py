"""routing's state for its lifetime (see ``services.shared.state``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.shared.state import ServiceState

if TYPE_CHECKING:
    from services.routing.decisions.clients import TeamsClient
    from services.routing.rule_sets.service import RuleBook
    from services.routing.settings import RoutingSettings


class RoutingState(ServiceState):
    settings: RoutingSettings
    rule_book: RuleBook
    teams: TeamsClient
