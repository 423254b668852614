"""Rule sets as versioned data: upload, dry-run, activate, shadow, roll back."""
