"""Referrals: intake, lifecycle, routing through the outbox."""
