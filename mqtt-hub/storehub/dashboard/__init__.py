"""The store owner's web dashboard (FastAPI + Jinja2), run by ``storehub dashboard``."""

from storehub.dashboard.app import create_app, open_hub

__all__ = ["create_app", "open_hub"]
