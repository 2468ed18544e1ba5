"""Loader dependencies of the alerts domain: a route names the alert, mute or policy it needs and gets
it, or the 404.

Routers may not import models; these aliases are the one place a route sees those rows' types.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from vigil.alerts.models import Alert, AlertMute, AlertPolicy
from vigil.alerts.policies import PolicyNotFound
from vigil.alerts.service import AlertNotFound, MuteNotFound
from vigil.core.deps import loader

AlertDep = Annotated[Alert, Depends(loader(Alert, "alert_id", error=AlertNotFound))]
# State changes (acknowledge, resolve) hold the row lock, so two of them on one alert run one after the other.
LockedAlertDep = Annotated[Alert, Depends(loader(Alert, "alert_id", error=AlertNotFound, lock=True))]
MuteDep = Annotated[AlertMute, Depends(loader(AlertMute, "mute_id", error=MuteNotFound, what="Mute"))]
PolicyDep = Annotated[AlertPolicy, Depends(loader(AlertPolicy, "policy_id", error=PolicyNotFound))]
