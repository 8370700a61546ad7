"""The REST API, wire-compatible with Batch AI 2018-05-01 (reference/sdk.md)."""
