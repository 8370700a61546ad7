"""Rendering of the batch scripts bai submits (pure functions: data in, text out)."""
