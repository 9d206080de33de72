"""Watching pull requests: `gh` polling, PR observations, and storing them."""
