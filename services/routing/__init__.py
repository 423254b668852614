"""The routing service: triage rules and routing decisions."""
