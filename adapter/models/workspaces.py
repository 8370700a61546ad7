"""Workspace create and update bodies."""

from __future__ import annotations

from pydantic import Field

from adapter.models.common import ApiModel


class WorkspaceCreateParameters(ApiModel):
    location: str = Field(min_length=1)
    tags: dict[str, str] = Field(default_factory=dict)


class WorkspaceUpdateParameters(ApiModel):
    tags: dict[str, str] = Field(default_factory=dict)
