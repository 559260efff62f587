"""Deterministic sample traffic with planted attacks, hard benign cases and labels: demo and test tooling.

Nothing in production imports it (a `make lint` contract); it needs only the ID-number rules of `core`.
"""
