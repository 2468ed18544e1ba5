"""Cameras, model configs and sensors: the devices and models an ANPR deployment is made of."""
