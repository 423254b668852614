"""All of routing's tables, for its migration environment."""

from services.routing import audit
from services.routing.base import Base
from services.routing.decisions import models as decision_models
from services.routing.rule_sets import models as rule_set_models

__all__ = ["Base", "audit", "decision_models", "rule_set_models"]
