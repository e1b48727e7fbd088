"""The demo pack: small models trained on cfs' synthetic face world (data only; see the cards)."""
