"""Assets: BLE tags heard by gateways, located by RSSI, watched by geofences and rules, streamed live.

One sub-package per aggregate (sites, gateways, assets, jobs, maintenance, geofences, rules, tracking),
each with its router, service, schemas and models; `router` mounts them as one, `service` is what other
domains may call, `tasks` the background loops.
"""
