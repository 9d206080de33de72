"""Ingest: turning hook envelopes into events, sessions and projects."""
