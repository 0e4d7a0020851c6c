"""`Telemetry`: what the agent calls to report to the region (see docs/mqtt.md).

The agent's thread only stores: `event()` and `command_result()` write a row
to the SQLite spool and return once it is durable; `state()`, `birth()` and
`sample()` keep the latest values in memory. The MQTT link thread does all
publishing: retained birth/status/state on every connection, state on change
and as a heartbeat, batched telemetry samples, and the spool in order with a
bounded window of messages awaiting PUBACK. Rows are deleted only after their
PUBACK; anything older than the current connection is re-sent marked
`"replayed": true`.
"""

from __future__ import annotations

import collections
import copy
import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable

from edge.config import Config
from edge.telemetry import schema
from edge.telemetry.client import Endpoint, Link, Will
from edge.telemetry.poison import PoisonGuard
from edge.telemetry.spool import PRIO_HIGH, PRIO_LOW, Spool

log = logging.getLogger("fabedge.telemetry")

MAX_PASSED_STATES = 8         # state changes kept for publishing in one tick (only while connected)
MAX_SAMPLES = 5000            # samples kept between two tele batches (oldest dropped beyond)
ACK_FLUSH_S = 0.05            # PUBACKed rows are deleted in batches at least this often
ACK_FLUSH_ROWS = 500
PRUNE_EVERY_S = 600.0
STOP_FLUSH_S = 5.0            # how long a clean stop waits for "offline" and in-flight PUBACKs


class Telemetry:
    """The machine's MQTT reporting with a durable outbox; safe to call from the agent's thread.

    on_command(payload, retained) gets every message on `cmd/req` raw, on the MQTT
    thread (the commands layer validates it); on_link(connected) reports the link.
    """

    def __init__(self, cfg: Config, spool_path: str | Path, *,
                 on_command: Callable[[bytes, bool], None],
                 on_link: Callable[[bool], None] | None = None,
                 window: int = 1000, backoff_max_s: float = 30.0) -> None:
        self.cfg = cfg
        b = cfg.broker
        self.topics = schema.Topics(cfg.machine.site, cfg.machine.id)
        endpoint = Endpoint.from_config(b, cfg.machine.id)   # ConfigError before anything is opened
        self.spool = Spool(spool_path, max_bytes=int(b.spool_max_mb * (1 << 20)),
                           max_age_s=b.spool_max_age_h * 3600)
        self._on_command = on_command
        self._on_link = on_link
        self._heartbeat_s = b.heartbeat_s
        self._will_delay_s = b.will_delay_s
        self._interval_s = b.telemetry_interval_s
        self.link = Link(endpoint, f"fabedge-{cfg.machine.site}-{cfg.machine.id}",
                         self, window=window, backoff_max_s=backoff_max_s)
        # latest values from the agent (guarded by _lock; published by the link thread)
        self._lock = threading.Lock()
        self._birth: dict[str, Any] | None = None
        self._birth_dirty = False
        self._state: dict[str, Any] | None = None
        self._state_dirty = False
        # earlier states not yet published (staged -> armed within one loop turn): each machine
        # state a watcher should see goes out in order while connected; bounded
        self._state_passed: collections.deque = collections.deque(maxlen=MAX_PASSED_STATES)
        self._samples: collections.deque = collections.deque(maxlen=MAX_SAMPLES)
        # link-thread bookkeeping
        self._session = self.spool.counter("session")
        self._pending_session = self._session
        self._window = window
        self._cursor = 0                  # highest spool row handed to paho on this connection
        self._replay_mark = 0             # rows up to this id were spooled before the connection
        self._inflight: dict[int, int] = {}   # paho mid -> spool row id
        self._acked: list[int] = []
        self._refused: list[int] = []
        self._poison = PoisonGuard()
        self._last_ack_flush = time.monotonic()
        self._last_state_pub = 0.0
        self._last_tele = time.monotonic()
        self._last_prune = 0.0
        self._waiting: set[int] = set()      # mids of non-spooled QoS 1 messages awaiting PUBACK
        self._stopped = False
        self._stopping = False
        self._ready = False
        self._cmd_sub_mid: int | None = None
        self.dropped_samples = 0

    # ---- the agent's API ---------------------------------------------------------------
    def start(self) -> None:
        """Connect in the background and return at once (works with the broker down)."""
        self.link.start()

    def stop(self, clean: bool = True) -> None:
        """clean: publish retained status "offline", wait briefly for in-flight PUBACKs, disconnect
        (no will). Not clean: drop the connection so the broker's will reports "lost". The spool
        keeps whatever was not acknowledged, for the next start."""
        if self._stopped:
            return
        self._stopped = True
        self.link.stop(final=self._final if clean else None, abrupt=not clean)
        self._flush_acks(force=True)
        self.spool.close()

    def birth(self, payload: dict) -> None:
        """Retained birth: identity, profile, limits, capabilities, versions, counters.
        Re-published on every connection."""
        schema.check_payload(payload, self.topics.site, self.topics.machine)
        with self._lock:
            self._birth, self._birth_dirty = copy.deepcopy(payload), True
        self.link.wake()

    def state(self, payload: dict) -> None:
        """Retained state (state, job, progress, layer, ETA, temperatures); published when it
        changes and again every `broker.heartbeat_s`."""
        schema.check_payload(payload, self.topics.site, self.topics.machine)
        with self._lock:
            if payload != self._state:
                old = self._state
                if (self._state_dirty and old is not None
                        and old.get("state") != payload.get("state")):
                    self._state_passed.append(old)
                self._state, self._state_dirty = copy.deepcopy(payload), True
        self.link.wake()

    def sample(self, payload: dict) -> None:
        """One telemetry sample; samples go out batched on `tele` every interval (QoS 0), or
        into the spool as low priority while the broker is unreachable."""
        if not isinstance(payload, dict):
            raise ValueError(f"sample must be a dict, got {type(payload).__name__}")
        if len(self._samples) == self._samples.maxlen:
            self.dropped_samples += 1
        self._samples.append({"ts": round(time.time(), 3), **payload})

    def set_telemetry_interval(self, seconds: float) -> None:
        """Change the `tele` batch interval (e.g. from a telemetry.rate command)."""
        seconds = float(seconds)
        if not 0.1 <= seconds <= 3600:
            raise ValueError(f"telemetry interval {seconds} s: must be between 0.1 and 3600 s")
        self._interval_s = seconds
        self.link.wake()

    @property
    def telemetry_interval(self) -> float:
        return self._interval_s

    def event(self, type: str, payload: dict, event_id: str | None = None) -> str:
        """Publish evt/<type> at QoS 1; durable in the spool before this returns. Returns the
        event id. Pass `event_id` (a stable key, e.g. derived from the job) when the same fact
        could be reported again after a crash: a key still in the spool is not stored twice,
        and the region counts by id."""
        schema.check_event_type(type)
        msg_id = event_id or schema.new_event_id()
        topic = self.topics.evt(type)
        # only a caller's own id can repeat; a fresh uuid4 needs no duplicate check
        return self._spool(topic, payload, msg_id, PRIO_HIGH, key=event_id, extra={"type": type})

    def command_result(self, payload: dict) -> None:
        """Publish on cmd/res at QoS 1, spooled like events."""
        self._spool(self.topics.cmd_res, payload, schema.new_event_id(), PRIO_HIGH)

    @property
    def connected(self) -> bool:
        """True while connected and subscribed to cmd/req."""
        return self._ready and self.link.is_connected

    @property
    def session(self) -> int:
        """The current (or last) connection's session number, as sent on `status`."""
        return self._session

    def stats(self) -> dict[str, int]:
        """Spool figures for the birth message's counters: rows and bytes waiting, rows delivered,
        rows dropped (low priority / events when full / too old), samples dropped between batches."""
        counters = self.spool.counters()
        return {"spooled": len(self.spool), "spool_bytes": self.spool.bytes,
                "delivered": counters.get("delivered", 0), "dropped_low": counters.get("dropped_low", 0),
                "dropped_high": counters.get("dropped_high", 0), "dropped_age": counters.get("dropped_age", 0),
                "refused": counters.get("refused", 0), "quarantined": counters.get("quarantined", 0),
                "dropped_samples": self.dropped_samples,
                "session": self._session}

    # ---- internals: building messages ----------------------------------------------------
    def _spool(self, topic: str, payload: dict, msg_id: str, prio: int, key: str | None = None,
               extra: dict | None = None) -> str:
        site, machine = self.topics.site, self.topics.machine
        body = {**(extra or {}), **payload}

        def build(seq: int) -> tuple[bytes, str]:
            return schema.encode(schema.envelope(site, machine, seq, body, msg_id=msg_id)), msg_id

        msg_id = self.spool.put(topic, build, prio, key=key)
        self.link.wake()
        return msg_id

    def _message_now(self, payload: dict) -> bytes:
        return schema.encode(schema.envelope(self.topics.site, self.topics.machine, self.spool.next_seq(), payload))

    def _status(self, status: str, session: int) -> bytes:
        return self._message_now({"status": status, "session": session})

    # ---- LinkOwner hooks (link thread) -----------------------------------------------------
    def make_will(self) -> Will:
        self._pending_session = self._session + 1
        return Will(self.topics.status, self._status("lost", self._pending_session), self._will_delay_s)

    def link_up(self, link: Link, receive_max: int) -> None:
        self._session = self._pending_session
        self.spool.set_counter("session", self._session)
        self._window = max(1, receive_max)
        self._replay_mark = self.spool.max_id()
        self._cursor = 0
        self._inflight.clear()
        self._poison.connected()
        self._ready = False
        self._waiting.clear()
        # "online" first: the retained status we then get back from our subscription is our own
        link.publish(self.topics.status, self._status("online", self._session), 1, True)
        self._cmd_sub_mid = link.subscribe(self.topics.cmd_req, qos=1)
        link.subscribe(self.topics.status, qos=1)
        with self._lock:
            self._birth_dirty = self._birth is not None
            self._state_dirty = self._state is not None
        log.info("MQTT connected (%s, session %d, %d spooled)", link.protocol_in_use, self._session, len(self.spool))

    def subscribed(self, mid: int, ok: bool) -> None:
        """The broker confirmed cmd/req: from now on commands reach us; report the link up."""
        if mid != self._cmd_sub_mid or self._ready:
            return
        if not ok:
            log.error("the broker refused our subscription to %s (ACL?): commands will not arrive",
                      self.topics.cmd_req)
        self._ready = True
        self._notify_link(True)

    def link_down(self) -> None:
        was_ready, self._ready = self._ready, False
        self._flush_acks(force=True)
        poison = self._poison.dropped(self._inflight.values())
        if poison is not None:
            log.error("spooled message %d makes the broker drop the connection (ACL?): set aside", poison)
            self.spool.quarantine(poison)
        self._inflight.clear()
        self._cursor = 0
        if was_ready:
            self._notify_link(False)

    def _notify_link(self, up: bool) -> None:
        if self._on_link is not None:
            try:
                self._on_link(up)
            except Exception:
                log.exception("on_link handler failed")

    def message(self, topic: str, payload: bytes, retained: bool) -> None:
        if topic == self.topics.cmd_req:
            self._on_command(payload, retained)
        elif topic == self.topics.status:
            self._check_own_status(payload)

    def _check_own_status(self, payload: bytes) -> None:
        """A stale will (older session) overwrote our retained status: say "online" again."""
        msg = schema.decode(payload)
        if msg is None or self._stopping or not self.link.is_connected:
            return
        session, status = msg.get("session"), msg.get("status")
        if not isinstance(session, int) or session > self._session:
            return   # not ours to judge (a newer instance of this machine would win anyway)
        if session == self._session and status != "lost":
            return   # our own online (or nothing to fix)
        log.warning("retained status became %r of session %r; re-announcing online (session %d)",
                    status, session, self._session)
        self.link.publish(self.topics.status, self._status("online", self._session), 1, True)

    def acked(self, mid: int, ok: bool) -> None:
        row = self._inflight.pop(mid, None)
        if row is None:
            self._waiting.discard(mid)
            return
        self._poison.acked(row)
        if ok:
            self._acked.append(row)
        else:   # a permanent refusal (ACL, quota): keeping it would block everything behind it
            log.warning("broker refused spooled message %d (e.g. ACL); dropping it", row)
            self._refused.append(row)

    def tick(self, link: Link) -> None:
        now = time.monotonic()
        up = link.is_connected
        if up:
            self._publish_retained(link, now)
            self._send_spool(link)
        else:
            with self._lock:         # offline, only the latest state matters (events keep history)
                self._state_passed.clear()
        self._publish_tele(link, now, up)
        self._flush_acks()
        if now - self._last_prune > PRUNE_EVERY_S:
            self._last_prune = now
            self.spool.prune_old()

    def _publish_retained(self, link: Link, now: float) -> None:
        with self._lock:
            birth = self._birth if self._birth_dirty else None
            self._birth_dirty = False
            state = self._state
            passed = list(self._state_passed)
            self._state_passed.clear()
            due = self._state_dirty or (state is not None and now - self._last_state_pub >= self._heartbeat_s)
            self._state_dirty = False
        if birth is not None:
            link.publish(self.topics.birth, self._message_now(birth), 1, True)
        for earlier in passed:
            link.publish(self.topics.state, self._message_now(earlier), 1, True)
        if due and state is not None:
            self._last_state_pub = now
            link.publish(self.topics.state, self._message_now(state), 1, True)

    def _publish_tele(self, link: Link, now: float, up: bool) -> None:
        if now - self._last_tele < self._interval_s:
            return
        self._last_tele = now
        samples = []
        while self._samples:
            samples.append(self._samples.popleft())
        if not samples:
            return
        body = {"interval_s": self._interval_s, "samples": samples}
        if up:
            link.publish(self.topics.tele, self._message_now(body), 0, False)
        else:
            self._spool(self.topics.tele, body, schema.new_event_id(), PRIO_LOW)

    def _send_spool(self, link: Link) -> None:
        window = 1 if self._poison.isolating else self._window
        room = window - len(self._inflight)
        while room > 0 and link.is_connected:
            rows = self.spool.read(self._cursor, min(room, 500))
            if not rows:
                return
            for row in rows:
                body = schema.mark_replayed(row.payload) if row.id <= self._replay_mark else row.payload
                mid = link.publish(row.topic, body, 1, False)
                if mid is None:
                    return
                self._inflight[mid] = row.id
                self._cursor = row.id
            room = window - len(self._inflight)

    def _flush_acks(self, force: bool = False) -> None:
        now = time.monotonic()
        if self._refused:
            refused, self._refused = self._refused, []
            self._delete(refused, "refused")
        if self._acked and (force or len(self._acked) >= ACK_FLUSH_ROWS or now - self._last_ack_flush >= ACK_FLUSH_S):
            acked, self._acked = self._acked, []
            self._last_ack_flush = now
            self._delete(acked, "delivered")

    def _delete(self, rows: list[int], counter: str) -> None:
        try:
            self.spool.ack(rows, counter)
        except Exception:
            log.exception("could not delete %d acknowledged rows (they will be sent again)", len(rows))

    def _final(self, link: Link) -> None:
        """Before a clean stop: let in-flight rows finish, then retained "offline"."""
        self._stopping = True
        self._send_spool(link)
        link.run_until(lambda: not self._inflight, STOP_FLUSH_S)
        mid = link.publish(self.topics.status, self._status("offline", self._session), 1, True)
        if mid is not None:
            self._waiting.add(mid)
            link.run_until(lambda: mid not in self._waiting, STOP_FLUSH_S)
