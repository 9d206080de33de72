"""Token usage and its cost: the price table and the usage reports."""
