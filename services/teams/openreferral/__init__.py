"""The Open Referral UK feed (HSDS 3.0 with the UK profile): the directory as a public
directory of services, read-only."""
