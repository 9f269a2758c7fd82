"""Hardware behind small interfaces (see :mod:`kiosk.drivers.base`), chosen by the config's
``type`` string (see :mod:`kiosk.drivers.registry` and docs/drivers.md)."""
