"""The rule-file language of triage: reading a rule set, checking it, evaluating it."""
