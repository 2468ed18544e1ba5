"""Audit log: who changed what, when (admin and write actions)."""
