"""Assets: the tagged things themselves, keyed by the tag they carry."""
