"""Claude Code transcripts: reading their lines as they grow, and the usage rows they hold."""
