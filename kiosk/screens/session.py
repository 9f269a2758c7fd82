"""The till session: the sale being rung up, for now only who it is for.

State diagram (the basket and payment states arrive with the sale issue)::

    no customer --attach(id)--> customer attached --detach()--> no customer
                                customer attached --attach(other id)--> customer attached
                                customer attached --refresh()--> same customer, re-read
                                                   (erased/merged away: resolved or dropped)

The session is a Kivy EventDispatcher so screens bind to ``customer`` and repaint when it
changes; it reads through engine functions only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from kivy.event import EventDispatcher
from kivy.properties import ObjectProperty

from kiosk.engine import alerts, customers, groups
from kiosk.engine.store import Store

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomerView:
    """What the till shows about a recalled customer."""

    record: dict[str, Any]
    alerts: list[str] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.record["id"]

    @property
    def name(self) -> str:
        return customers.display_name(self.record)

    @property
    def observation(self) -> str:
        return (self.record.get("observation") or "").strip()

    @classmethod
    def load(cls, store: Store, customer_id: str) -> "CustomerView":
        """Read a customer with the alerts that hold for it and its groups."""
        record = customers.get(store, customer_id)
        return cls(
            record=record,
            alerts=alerts.alerts_for(store, record),
            groups=groups.groups_of(store, record["id"]),
        )


class TillSession(EventDispatcher):
    """The sale in progress at this till."""

    customer = ObjectProperty(None, allownone=True)  # CustomerView or None

    def __init__(self, store: Store, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store = store

    def attach(self, customer_id: str) -> CustomerView:
        """Put a customer on the sale (raises customers.NotFound)."""
        view = CustomerView.load(self.store, customer_id)
        self.customer = view
        _LOGGER.info("customer %s attached to the sale", view.record["customer_no"])
        return view

    def detach(self) -> None:
        """Remove the customer from the sale."""
        self.customer = None

    def refresh(self) -> None:
        """Re-read the attached customer (after an edit here or a change synced in)."""
        if self.customer is None:
            return
        try:
            self.customer = CustomerView.load(self.store, self.customer.id)
        except customers.NotFound:
            _LOGGER.info("attached customer %s no longer exists", self.customer.id)
            self.customer = None
