"""Shared machinery of Vigil: configuration, database, auth, errors, messaging, cache, storage."""
