"""Housekeeping the daemon runs on its own schedule (retention)."""
