"""Store hub: applies device events, keeps the store's source of truth, serves the dashboard."""
