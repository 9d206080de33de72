"""Telling the human: notifiers (command, webhook, desktop), routing, and the delivery worker."""
