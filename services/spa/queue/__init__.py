"""The call-handler queue: cases waiting for a contact assessment in a locality SPA."""
