"""Assets: BLE tags heard by gateways, located by RSSI, watched by geofences and rules, streamed live."""
