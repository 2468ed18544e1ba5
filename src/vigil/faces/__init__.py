"""Faces: photo events, face detection and embeddings in pgvector, clusters and find-similar."""
