"""Loader dependencies of the cameras domain: a route names the row it needs and gets it, or the 404.

Routers may not import models; these aliases are the one place a route sees a camera row's type.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from vigil.cameras.models import Camera, ModelConfig, Sensor
from vigil.cameras.service import CameraNotFound, ModelConfigNotFound, SensorNotFound
from vigil.core.deps import loader

CameraDep = Annotated[Camera, Depends(loader(Camera, "camera_id", error=CameraNotFound))]
ModelConfigDep = Annotated[ModelConfig, Depends(loader(ModelConfig, "model_id", error=ModelConfigNotFound))]
SensorDep = Annotated[Sensor, Depends(loader(Sensor, "sensor_id", error=SensorNotFound))]
