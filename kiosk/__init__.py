"""Retail store appliance: local-first Kivy kiosk (till, clipad, survey, customer display)."""

__version__ = "0.1.0"
