"""SQLite storage: migrations, the group-commit writer, the reader pool."""
