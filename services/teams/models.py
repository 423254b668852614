"""All of teams' tables, for its migration environment."""

from services.teams import audit, heartbeats
from services.teams.base import Base
from services.teams.caseloads import models as caseload_models
from services.teams.directory import models as directory_models

__all__ = ["Base", "audit", "caseload_models", "directory_models", "heartbeats"]
