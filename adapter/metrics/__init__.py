"""Prometheus metrics: outcome counters bai records, and a collector over its state."""
