"""Change data capture: reading what the change_log triggers recorded."""
