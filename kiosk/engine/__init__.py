"""Domain logic and storage. No Kivy, no MQTT: screens and the sync call into this package.

Importing the package registers every domain module's migrations and event handlers, so a
store opened anywhere (device, hub, test) has the complete schema.
"""

from kiosk.engine import store as store  # noqa: F401  (core migrations first)
from kiosk.engine import settings as settings  # noqa: F401
from kiosk.engine import customers as customers  # noqa: F401
from kiosk.engine import questions as questions  # noqa: F401
from kiosk.engine import groups as groups  # noqa: F401
from kiosk.engine import alerts as alerts  # noqa: F401
from kiosk.engine import replication as replication  # noqa: F401
from kiosk.engine import stored_value as stored_value  # noqa: F401
from kiosk.engine import messages_outbox as messages_outbox  # noqa: F401
from kiosk.engine import catalog as catalog  # noqa: F401
from kiosk.engine import promotions as promotions  # noqa: F401
from kiosk.engine import loyalty as loyalty  # noqa: F401
from kiosk.engine import giftcards as giftcards  # noqa: F401
from kiosk.engine import wallet as wallet  # noqa: F401
from kiosk.engine import vouchers as vouchers  # noqa: F401
from kiosk.engine import sale as sale  # noqa: F401
from kiosk.engine import traffic as traffic  # noqa: F401
from kiosk.engine import receipt as receipt  # noqa: F401  (declares receipt.footer)
from kiosk.engine import messaging as messaging  # noqa: F401
from kiosk.engine import surveys as surveys  # noqa: F401
from kiosk.engine import directives as directives  # noqa: F401
from kiosk.engine import clipad as clipad  # noqa: F401
from kiosk.engine import display as display  # noqa: F401
