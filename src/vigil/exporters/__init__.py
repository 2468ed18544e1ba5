"""Exporters: push the app's events (plate reads, alerts, ...) to webhooks, MQTT and Kafka, at least once."""
