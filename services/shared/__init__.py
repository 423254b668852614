"""Library used by every service. It imports no service."""
