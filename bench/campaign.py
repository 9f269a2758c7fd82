"""Benchmark: an e-mail campaign to 10,000 customers through a real SMTP server on loopback.

    .venv/bin/python bench/campaign.py [--recipients 10000]

Builds a store with N consenting customers, creates a campaign, queues it (consent check,
idempotency keys, events) and lets the hub's dispatcher send every message over STARTTLS
with login to an aiosmtpd server on 127.0.0.1. Prints the time of each phase and messages/s.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "mqtt-hub")]

from kiosk.engine import customers, messages_outbox, messaging  # noqa: E402
from kiosk.engine.store import Identity, Store  # noqa: E402
from storehub.messaging.channels import EmailChannel  # noqa: E402
from storehub.messaging.dispatch import Dispatcher  # noqa: E402
from tests.support.mailserver import MailServer  # noqa: E402
from tests.support.net import LOOPBACK  # noqa: E402


def _serve(tmp: str, info, stop) -> None:
    """The SMTP server in its own process, as a real mail relay would be (no shared GIL)."""
    with MailServer(Path(tmp)) as mail:
        info.put((mail.port, str(Path(tmp) / "cert.pem")))
        stop.wait()
        info.put(len(mail.messages))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=10_000)
    args = parser.parse_args()
    n = args.recipients
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        store = Store(tmp / "hub.db", Identity("bench", "hub", 99))
        t0 = time.perf_counter()
        customers.create_many(store, [
            {"first_name": "Kundin", "last_name": f"Nr{i:05d}", "email": f"k{i}@example.org",
             "email_consent": True} for i in range(n)])  # fmt: skip
        t1 = time.perf_counter()
        cid = messaging.create_campaign(store, "Bench", "email", [], "Hallo {first_name} {last_name}",
                                        subject="Angebote")  # fmt: skip
        count, _ = messaging.preview(store, cid)
        t2 = time.perf_counter()
        queued = messaging.send_campaign(store, cid)
        t3 = time.perf_counter()
        info, stop = mp.Queue(), mp.Event()
        server = mp.Process(target=_serve, args=(str(tmp), info, stop), daemon=True)
        server.start()
        port, ca_file = info.get(timeout=30)
        channel = EmailChannel(LOOPBACK, port, "laden@example.org", username="laden",
                               password="geheim", ca_file=ca_file)  # fmt: skip
        dispatcher = Dispatcher(store, {"email": channel})
        sent = 0
        while True:
            report = dispatcher.run_once(limit=1000)
            sent += report.sent
            if not report.sent:
                break
        channel.close()
        t4 = time.perf_counter()
        stop.set()
        received = info.get(timeout=30)
        server.join(10)
        left = len(messages_outbox.pending(store))
        store.close()
    print(f"recipients                 {n}")
    print(f"customers built            {t1 - t0:8.2f} s")
    print(f"audience count + preview   {(t2 - t1) * 1000:8.1f} ms ({count} recipients)")
    print(f"campaign queued            {t3 - t2:8.2f} s ({queued} messages, {queued / (t3 - t2):.0f}/s)")
    print(f"sent over SMTP (STARTTLS)  {t4 - t3:8.2f} s ({sent} messages, {sent / (t4 - t3):.0f}/s)")
    print(f"received by the server     {received}; still queued {left}")
    print(f"campaign total             {t4 - t2:8.2f} s")


if __name__ == "__main__":
    main()
