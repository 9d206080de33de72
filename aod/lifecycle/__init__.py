"""Session lifecycle: facts about a session and the status derived from them."""
