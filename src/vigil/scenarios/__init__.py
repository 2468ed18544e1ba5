"""Scenarios: video-analytics state machine, Kafka-dispatched runners, retries and stored predictions."""
