"""Kivy screens of the kiosk devices: one module and one ``.kv`` file per screen.

Screens call engine commands and render what they return; they never run SQL, open hardware
or talk MQTT. Shared look and widgets live in ``theme``, ``widgets`` and ``keyboard``.
Importing this package does not import Kivy: ``kiosk.app`` configures Kivy first.
"""
