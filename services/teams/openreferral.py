"""Open Referral UK (HSDS 3.0) read API over the directory."""

from fastapi import APIRouter

router = APIRouter(prefix="/openreferral", tags=["open referral"])
