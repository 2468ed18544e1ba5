"""Tracking: raw RSSI observations in, location estimates out, their history and the reports over it."""
