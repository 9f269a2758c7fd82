"""People counters → hourly CountDeltas → ``traffic.counted`` events in the engine."""

from __future__ import annotations

import datetime as dt

import pytest
from evdev import ecodes as e

from kiosk.drivers import registry
from kiosk.drivers.base import State
from kiosk.drivers.evdev_replay import PipeInputDevice, ReplayFinder
from kiosk.drivers.people_counter import EvdevCounter, EvdevCounterConfig, Tally, shop_hour
from kiosk.engine import events, traffic
from kiosk.engine.clock import SHOP_TZ
from tests.test_drivers_helpers import Collector, english, pty_pair  # noqa: F401

# 2026-05-04 10:15:00 and 11:05:00 Berlin (CEST, UTC+2)
T1015 = dt.datetime(2026, 5, 4, 10, 15, tzinfo=SHOP_TZ).timestamp()
T1105 = dt.datetime(2026, 5, 4, 11, 5, tzinfo=SHOP_TZ).timestamp()


def make_serial(got: Collector, **table):
    entry, config = registry.parse("counter", 0, {"type": "serial", "rescan_s": 0.05, **table})
    return registry.create(entry, config, registry.DriverContext(data_dir=".", callbacks=got.callbacks()))


def test_tally_buckets_by_shop_local_hour_and_direction():
    tally = Tally("door", per_visit=2)
    tally.add("in", T1015)
    tally.add("in", T1015 + 60, 2)
    tally.add("out", T1015 + 120)
    tally.add("pass", T1105, 3)
    tally.add("sideways", T1105)  # ignored
    deltas = tally.flush()
    assert [(d.hour_start.hour, d.direction, d.count, d.per_visit) for d in deltas] == [
        (10, "in", 3, 1), (10, "out", 1, 1), (11, "pass", 3, 2)
    ]
    assert deltas[0].hour_start == dt.datetime(2026, 5, 4, 10, tzinfo=SHOP_TZ)
    assert len({d.flush_id for d in deltas}) == 3
    assert tally.flush() == []  # counted once


def test_shop_hour_across_the_dst_change():
    # 2026-10-25 02:30 CEST and 02:30 CET are different hours
    first = dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.timezone.utc).timestamp()
    second = first + 3600
    assert shop_hour(first).hour == shop_hour(second).hour == 2
    tally = Tally("door")
    tally.add("in", first)
    tally.add("in", second)
    deltas = tally.flush()
    assert [d.count for d in deltas] == [1, 1]  # two hours, not one with 2
    utc = [d.hour_start.astimezone(dt.timezone.utc) for d in deltas]
    assert utc[1] - utc[0] == dt.timedelta(hours=1)


def test_serial_counter_lines_to_deltas_via_loop_url():
    got = Collector()
    counter = make_serial(got, url="loop://", flush_s=3600)
    counter.start()
    try:
        assert counter.wait_ready()
        counter.port.write(b"IN\r\nIN 3\r\nout\r\nPASS\r\n")
        counter.port.write(b"HELLO\r\n")  # not a counter line
        got.wait(lambda: counter.unknown_lines == 1)
        assert "unknown data ('HELLO')" in counter.status.message
        assert counter.status.state is State.WARNING
    finally:
        counter.stop()  # flushes what was counted
    totals = {d.direction: d.count for d in got.counts}
    assert totals == {"in": 4, "out": 1, "pass": 1}


def test_missing_counter_port_is_reported(tmp_path):
    got = Collector()
    counter = make_serial(got, url=str(tmp_path / "ttyUSB7"))
    counter.start()
    try:
        got.wait(lambda: counter.status.state is State.DISCONNECTED)
    finally:
        counter.stop()
    assert got.counts == []


@pytest.mark.socat
def test_serial_counter_over_a_pty_flushes_periodically(pty_pair):
    got = Collector()
    counter = make_serial(got, url=pty_pair.a, baudrate=2400, flush_s=0.05)
    counter.start()
    try:
        assert counter.wait_ready()
        with pty_pair.device() as device:
            device.write(b"IN\nIN\n")
            got.wait(lambda: sum(d.count for d in got.counts) == 2)  # flushed without stop
    finally:
        counter.stop()


def test_input_event_counter_counts_key_presses():
    got = Collector()
    config = EvdevCounterConfig(
        type="evdev", match_name="door", in_key="KEY_F13", out_key="KEY_F14", rescan_s=0.05,
        flush_s=0.05,
    )  # fmt: skip
    finder = ReplayFinder()
    counter = EvdevCounter("door", config, finder, got.callbacks())
    device = finder.plug(PipeInputDevice(name="door sensor"))
    sec = int(T1015)
    rows = []
    for i, code in enumerate([e.KEY_F13, e.KEY_F13, e.KEY_F14, e.KEY_A, e.KEY_F13]):
        rows += [(sec + i, 0, e.EV_KEY, code, 1), (sec + i, 0, e.EV_SYN, 0, 0),
                 (sec + i, 1000, e.EV_KEY, code, 2),  # autorepeat: not another person
                 (sec + i, 5000, e.EV_KEY, code, 0)]  # fmt: skip
    counter.start()
    try:
        device.write_events(rows)
        got.wait(lambda: sum(d.count for d in got.counts) == 4)  # flushed by the idle loop
        assert device.grabbed
    finally:
        counter.stop()
    totals: dict = {}
    for d in got.counts:
        totals[d.hour_start.hour, d.direction] = totals.get((d.hour_start.hour, d.direction), 0) + d.count
    assert totals == {(10, "in"): 3, (10, "out"): 1}


def test_input_event_counter_config_needs_known_keys():
    with pytest.raises(registry.DriverConfigError, match="in_key"):
        registry.parse("counter", 0, {"type": "evdev", "match_name": "door"})
    with pytest.raises(registry.DriverConfigError, match="unknown key name 'KEY_NOPE'"):
        registry.parse("counter", 0, {"type": "evdev", "match_name": "door", "in_key": "KEY_NOPE"})


# -- engine -------------------------------------------------------------------------------------
def test_counts_recorded_as_events_once_per_flush(store):
    tally = Tally("door", per_visit=2)
    tally.add("in", T1015, 5)
    tally.add("out", T1015, 4)
    tally.add("pass", T1105, 7)
    deltas = tally.flush()
    for delta in deltas:
        assert traffic.record_delta(store, delta) is not None
    assert all(traffic.record_delta(store, d) is None for d in deltas)  # retried: no change
    assert len(events.history(store, "traffic.counted")) == 3

    hours = traffic.hourly(store, dt.date(2026, 5, 4))
    assert [(h.hour_start.hour, h.entered, h.left, h.passes, h.visits) for h in hours] == [
        (10, 5, 4, 0, 5), (11, 0, 0, 7, 3)
    ]
    assert traffic.visits(store, dt.date(2026, 5, 4)) == 8
    assert traffic.hourly(store, dt.date(2026, 5, 5)) == []


def test_the_two_2_oclock_hours_of_the_dst_night_stay_apart(store):
    first = dt.datetime(2026, 10, 25, 0, tzinfo=dt.timezone.utc)  # 02:00 CEST
    second = dt.datetime(2026, 10, 25, 1, tzinfo=dt.timezone.utc)  # 02:00 CET
    traffic.record(store, counter="door", hour_start=first, direction="in", count=1, flush_id="f-000001")
    traffic.record(store, counter="door", hour_start=second, direction="in", count=2, flush_id="f-000002")
    hours = traffic.hourly(store, dt.date(2026, 10, 25))
    assert [(h.hour_start.hour, h.entered) for h in hours] == [(2, 1), (2, 2)]


def test_replayed_events_apply_once_and_counters_add_up(tmp_path, identity):
    from kiosk.engine.store import Identity, Store

    till = Store(tmp_path / "till.db", identity)
    hub = Store(tmp_path / "hub.db", Identity("teststore", "hub", 99))
    try:
        hour = dt.datetime(2026, 5, 4, 10, tzinfo=SHOP_TZ)
        traffic.record(till, counter="door", hour_start=hour, direction="in", count=4, flush_id="f-000001")
        traffic.record(till, counter="side-door", hour_start=hour, direction="in", count=2, flush_id="f-000002")
        for ev in events.history(till, "traffic.counted"):
            assert events.apply(hub, ev)
            assert not events.apply(hub, ev)  # delivered twice
        assert [h.visits for h in traffic.hourly(hub, dt.date(2026, 5, 4))] == [6]
    finally:
        till.close()
        hub.close()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"direction": "up"}, "direction must be in, out or pass"),
        ({"count": 0}, "count must be a positive whole number"),
        ({"count": 1.5}, "count must be a positive whole number"),
        ({"hour_start": dt.datetime(2026, 5, 4, 10, 30, tzinfo=SHOP_TZ)}, "start of an hour"),
        ({"hour_start": dt.datetime(2026, 5, 4, 10)}, "timezone-aware"),
        ({"counter": "Door 1"}, "counter name"),
        ({"per_visit": 0}, "per_visit"),
    ],
)
def test_bad_counts_are_refused_and_nothing_is_written(store, change, message):
    args = dict(counter="door", hour_start=dt.datetime(2026, 5, 4, 10, tzinfo=SHOP_TZ),
                direction="in", count=1, flush_id="f-000001")  # fmt: skip
    args.update(change)
    with pytest.raises(traffic.TrafficError, match=message):
        traffic.record(store, **args)
    assert events.history(store, "traffic.counted") == []
