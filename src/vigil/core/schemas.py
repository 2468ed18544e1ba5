"""The shared bases of every domain's API models, so the same field means the same thing everywhere."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, GetJsonSchemaHandler, StringConstraints, ValidationInfo, field_validator
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

NAME_MAX = 200  # the `name` columns are String(200)


def _scalar_types(annotation: Any) -> set[Any]:
    """The plain types an annotation admits: `Annotated[float, ...] | None` -> {float, NoneType}."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _scalar_types(get_args(annotation)[0])
    if origin in (Union, UnionType):
        return set().union(*(_scalar_types(a) for a in get_args(annotation)))
    return {annotation}


class Input(BaseModel):
    """Base of request bodies: an unknown field is a 422, not silently dropped.

    JSON types are not coerced into each other: `0` is not `false` and `false` is not `0` (pydantic's lax
    mode would take both, while the document says boolean or number). Strings still become UUIDs and
    times, which JSON has no type for.
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _json_types_stay_apart(cls, value: Any, info: ValidationInfo) -> Any:
        if info.field_name is None or value is None:
            return value
        types = _scalar_types(cls.model_fields[info.field_name].annotation)
        if bool in types and not isinstance(value, bool) and types <= {bool, type(None)}:
            raise ValueError("must be true or false")
        if isinstance(value, bool) and bool not in types and types & {int, float}:
            raise ValueError("must be a number, not true or false")
        return value


class Read(BaseModel):
    """Base of responses: built from ORM rows (`from_attributes`), so routes may return models."""

    model_config = ConfigDict(from_attributes=True)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_MAX)]
"""A display name: surrounding whitespace is stripped everywhere, and a blank name is a 422."""



class Patch(Input):
    """Base of PATCH bodies: every field may be left out, but only those in `__nullable__` may be null.

    The same set drives the document (other fields are not nullable in the JSON schema) and the
    service (`core.crud.patch_changes` answers 422 `null_not_allowed`), so the two cannot disagree.
    """

    __nullable__: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        schema = handler(core_schema)
        resolved = handler.resolve_ref_schema(schema)
        for name, prop in resolved.get("properties", {}).items():
            any_of = prop.get("anyOf")
            if name in cls.__nullable__ or not any_of or {"type": "null"} not in any_of:
                continue
            rest = [s for s in any_of if s != {"type": "null"}]
            del prop["anyOf"]
            prop.pop("default", None)  # `null` is not a value such a field can take
            if len(rest) == 1:
                prop.update(rest[0])
            else:
                prop["anyOf"] = rest
        return schema
