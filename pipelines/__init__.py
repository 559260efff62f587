"""Prefect flows: they pass paths, dates and run ids between tasks and call into jobs/, delivery/ and core/."""
