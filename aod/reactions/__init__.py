"""Reactions: conditions and budget rules (pure), the engine that records decisions, the nudger."""
