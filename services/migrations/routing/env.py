"""Alembic environment of the routing service."""

from alembic import context

from services.routing.models import Base
from services.shared.migrations import run_environment

run_environment(context, Base.metadata)
