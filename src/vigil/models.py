"""The one registry of ORM models: importing this module registers every table on Base.metadata.

Alembic's env.py and the tests import it; add each new domain's models here.
"""

from vigil.alerts.models import Alert  # noqa: F401
from vigil.assets.assets.models import Asset  # noqa: F401
from vigil.assets.gateways.models import Gateway  # noqa: F401
from vigil.assets.geofences.models import Geofence, GeofenceEvent, GeofenceState  # noqa: F401
from vigil.assets.jobs.models import Job, job_assets  # noqa: F401
from vigil.assets.maintenance.models import Maintenance  # noqa: F401
from vigil.assets.rules.models import Rule, RuleState  # noqa: F401
from vigil.assets.sites.models import Site  # noqa: F401
from vigil.assets.tracking.models import LocationEstimate, Observation  # noqa: F401
from vigil.audit.models import AuditEntry  # noqa: F401
from vigil.cameras.models import Camera, ModelConfig, Sensor  # noqa: F401
from vigil.core.db import Base
from vigil.core.messaging import OutboxEvent  # noqa: F401
from vigil.core.security import ApiKey  # noqa: F401
from vigil.exporters.models import Delivery, Exporter  # noqa: F401
from vigil.faces.models import Face, FaceCluster, FaceClusterJob, FaceEvent, FaceImage  # noqa: F401
from vigil.people.models import Person, ReidMessage  # noqa: F401
from vigil.plates.models import PlateEvent, WatchlistEntry  # noqa: F401
from vigil.scenarios.models import Prediction, Scenario, ScenarioRun, ScenarioTransition  # noqa: F401
from vigil.zones.models import Zone  # noqa: F401

metadata = Base.metadata
