"""Loader dependencies of the exporters domain: a route names the exporter it needs and gets it, or the 404.

Routers may not import models; this alias is the one place a route sees the Exporter row's type.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from vigil.core.deps import loader
from vigil.exporters.models import Exporter
from vigil.exporters.service import ExporterNotFound

ExporterDep = Annotated[Exporter, Depends(loader(Exporter, "exporter_id", error=ExporterNotFound))]
