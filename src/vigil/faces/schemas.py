"""Faces API models. Distances are Euclidean (L2) between the model's 128-d vectors."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from vigil.core.schemas import Input, Name, Patch
from vigil.core.types import UtcDatetime

EventCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]


class _Period(Input):
    @model_validator(mode="after")
    def _ends_after_start(self):
        starts, ends = getattr(self, "starts_at", None), getattr(self, "ends_at", None)
        if starts is not None and ends is not None and ends < starts:
            raise ValueError("ends_at must not be before starts_at")
        return self


class EventCreate(_Period):
    code: EventCode = Field(description="Natural key, unique: letters, digits, `_`, `-`, `.`; at most 64.")
    name: Name
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    running: bool = Field(True, description="Uploads are accepted only while the event is running.")


class EventReplace(_Period):
    """PUT: every field but `code` (which never changes); omitted optional fields are cleared."""

    name: Name
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    running: bool = True


class EventUpdate(_Period, Patch):
    __nullable__ = frozenset({"starts_at", "ends_at"})
    name: Name | None = None
    starts_at: UtcDatetime | None = None
    ends_at: UtcDatetime | None = None
    running: bool | None = None


class EventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
    starts_at: datetime | None
    ends_at: datetime | None
    running: bool
    created_at: datetime
    updated_at: datetime


class FaceRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    bbox: list[int] = Field(description="[x, y, w, h] in pixels of the upright (EXIF-rotated) image.")
    cluster_id: uuid.UUID | None
    det_score: float = Field(description="HOG detector score (higher is surer).")
    model: str = Field(description="Model that made the embedding; searches never mix models.")
    alignment: str


class ImageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_code: str
    width: int = Field(description="Upright width in pixels, after EXIF orientation.")
    height: int
    taken_at: datetime | None = Field(description="EXIF DateTimeOriginal, in UTC (read as UTC without an offset tag).")
    content_type: str
    size_bytes: int
    sha256: str
    filename: str | None
    created_at: datetime
    faces: list[FaceRead]


class SearchQueryFace(BaseModel):
    bbox: list[int] | None = Field(description="Where the query face is in the query image; null for an embedding.")


class SearchMatch(BaseModel):
    face_id: uuid.UUID
    image_id: uuid.UUID
    event_code: str
    bbox: list[int]
    cluster_id: uuid.UUID | None
    distance: float = Field(description="Euclidean (L2) distance between the 128-d vectors; smaller is closer.")
    is_match: bool = Field(description="distance <= the configured threshold (VIGIL_FACES_MATCH_THRESHOLD, 0.6).")
    query_index: int = Field(description="Which entry of `queries` this match answers.")


class SearchResult(BaseModel):
    query_faces: int = Field(description="Faces found in the query image (1 for an embedding).")
    queries: list[SearchQueryFace] = Field(description="The query faces searched: the largest, or all with all_faces.")
    metric: str = Field("l2", description="Distance metric of `distance`: L2 (Euclidean).")
    threshold: float = Field(description="Same-person cut applied for `is_match`.")
    model: str
    exact: bool = Field(description="True for an exact scan (one event), false for the HNSW index (all events).")
    matches: list[SearchMatch] = Field(description="Nearest first.")


class ClusterRead(BaseModel):
    cluster_id: uuid.UUID
    size: int = Field(description="Faces in the cluster.")
    face_ids: list[uuid.UUID] = Field(description="A sample of its faces, oldest first.")
    image_ids: list[uuid.UUID] = Field(description="The images of `face_ids`, in the same order.")


class ClusterJobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    event_code: str
    status: str = Field(description="queued | running | done | failed")
    phase: str = Field(description="queued | loading | clustering | saving | done")
    total: int = Field(description="Faces being clustered.")
    processed: int = Field(description="Faces whose neighbours have been compared so far.")
    progress: float = Field(description="processed / total, 1.0 when done.")
    clusters: int | None = Field(description="Clusters found, when done.")
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
