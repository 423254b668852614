"""Directory management: create, update and retire entries, with every change versioned."""

from fastapi import APIRouter

router = APIRouter(prefix="/v1/directory", tags=["directory admin"])
