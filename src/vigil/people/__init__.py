"""People: tracked identities (`global_id`), their zone, the cached directory and the ReID gallery."""
