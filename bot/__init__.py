"""Channels and scripts that serve the assistant."""
