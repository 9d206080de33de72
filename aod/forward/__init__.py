"""Forwarding to a team PostgreSQL: the circuit breaker, the team schema, the shipper and its job."""
