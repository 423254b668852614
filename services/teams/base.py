from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from services.shared.db import NAMING_CONVENTION


class Base(DeclarativeBase):
    """teams' own tables: each service owns its database and its metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
