"""The synthetic face world."""
