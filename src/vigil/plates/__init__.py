"""Plates: ANPR events with their images, search, stats, a watchlist that raises alerts, a live stream."""
