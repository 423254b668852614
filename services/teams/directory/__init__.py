"""The directory: localities, practices and teams, their hours and capacity; which team serves
a case; the admin API and the Open Referral UK feed."""
