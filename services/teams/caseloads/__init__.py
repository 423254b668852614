"""Team caseloads: cases spa assigns, what teams do with them, and the reports back to spa."""
