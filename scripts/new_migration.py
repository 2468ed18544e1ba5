"""Autogenerate an Alembic revision against a throwaway embedded PostgreSQL.

    .venv/bin/python scripts/new_migration.py "people and zones" 0003

Starts a temporary dev stack, upgrades it to head, diffs the models (vigil.models) against it and
writes alembic/versions/<date>_<rev>_<slug>.py. Review the file before committing it.
"""

import sys
import tempfile
import warnings
from pathlib import Path

from alembic import command
from vigil.core.config import Settings
from vigil.core.devstack import DevStack
from vigil.core.migrations import alembic_config, upgrade

warnings.filterwarnings("ignore", module="platformdirs")


def main() -> None:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    message, rev_id = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory(prefix="vigil-migration-") as tmp:
        stack = DevStack(Path(tmp), fast=True)
        settings = stack.start(Settings(_env_file=None, database_url=None))
        try:
            upgrade(settings.database_url or "")
            command.revision(alembic_config(settings.database_url), message=message, autogenerate=True,
                             rev_id=rev_id)
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
