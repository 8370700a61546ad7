"""Pydantic models of the Batch AI 2018-05-01 request bodies (camelCase on the wire)."""
