"""Sites: the places, each with its own metric frame, that gateways, assets, geofences and jobs belong to."""
