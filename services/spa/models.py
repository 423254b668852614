"""All of spa's tables, for its migration environment."""

from services.spa import audit, heartbeats
from services.spa.base import Base
from services.spa.console import models as console_models
from services.spa.fhir import models as fhir_models
from services.spa.identity import models as identity_models
from services.spa.referrals import models as referral_models
from services.spa.webhooks import models as webhook_models

__all__ = [
    "Base",
    "audit",
    "console_models",
    "fhir_models",
    "heartbeats",
    "identity_models",
    "referral_models",
    "webhook_models",
]
