"""Runs the whole mesh locally: Envoy and the four services, health-checked, stopped cleanly."""
