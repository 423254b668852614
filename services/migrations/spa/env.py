"""Alembic environment of the spa service."""

from alembic import context

from services.shared.migrations import run_environment
from services.spa.models import Base

run_environment(context, Base.metadata)
