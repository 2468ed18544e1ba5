"""Gateways: the BLE receivers at known positions on a site."""
