"""Loader dependencies of the people domain: a route names the person it needs and gets them, or the 404.

Routers may not import models; this alias is the one place a route sees the Person row's type.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends

from vigil.core.deps import loader, reader
from vigil.people.models import Person
from vigil.people.schemas import PersonRead
from vigil.people.service import PersonNotFound

PersonDep = Annotated[Person, Depends(loader(Person, "person_id", error=PersonNotFound))]
# GET /people/{id}: the columns PersonRead shows, on the read pool.
PersonReadDep = Annotated[dict[str, Any], Depends(reader(Person, PersonRead, "person_id", error=PersonNotFound))]
