"""Routing decisions: triage a referral on its facts and ask the directory for its teams."""
