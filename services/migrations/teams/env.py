"""Alembic environment of the teams service."""

from alembic import context

from services.shared.migrations import run_environment
from services.teams.models import Base

run_environment(context, Base.metadata)
