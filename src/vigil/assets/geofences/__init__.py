"""Geofences: circles and polygons on a site, each asset's state with them, and the enter/exit history."""
