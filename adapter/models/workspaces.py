"""Workspace create and update bodies."""

from __future__ import annotations

from pydantic import Field

from adapter.models.common import MAX_WORD, ApiModel, Tags


class WorkspaceCreateParameters(ApiModel):
    location: str = Field(min_length=1, max_length=MAX_WORD)
    tags: Tags = Field(default_factory=dict)


class WorkspaceUpdateParameters(ApiModel):
    tags: Tags = Field(default_factory=dict)
