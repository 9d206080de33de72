"""Session use cases: the one owner of session state (facts, status), and spawn / send / kill."""
