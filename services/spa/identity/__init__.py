"""Registered calling systems and the built-in OAuth2 client-credentials token issuer."""
