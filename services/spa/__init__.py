"""The spa service: intake, the referral lifecycle, and the built-in token issuer."""
