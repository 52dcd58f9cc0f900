"""Widgets of the wizard, one concept per module."""
