"""Vigil: one backend for camera and sensor analytics."""

__version__ = "0.1.0"
