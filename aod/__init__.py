"""aod: the local daemon that remembers every coding-agent session."""

__version__ = "0.1.0"
