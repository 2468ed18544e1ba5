"""Platform routes: health, readiness, metrics, API keys, cache and the generic event stream."""
