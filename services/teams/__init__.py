"""The teams service: the directory of localities, practices and teams, and team caseloads."""
