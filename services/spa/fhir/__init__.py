"""The BaRS (NHS Booking and Referral Standard) receiver: FHIR R4 messaging at /FHIR/R4."""
