"""Reports on the response clocks: how fast cases were accepted and first seen."""
