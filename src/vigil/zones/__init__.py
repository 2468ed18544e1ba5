"""Zones: named polygons (working, detection, exclusion, parking) that people and cameras refer to."""
