"""Alerts: one alert model for every source, deduplicated, acknowledged and resolved, announced live."""
