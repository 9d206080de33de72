"""Looking back at a session: the pacing of a replay and the Markdown of an export, as pure rules."""
