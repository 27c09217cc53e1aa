"""Delivery adapters: hand reserved touches to the outside world, exactly once.

The send reserves a touch and its outbox row in one transaction; an adapter
then delivers outbox rows and reports, per row, ``delivered`` or
``failed``. Both adapters are safe to run again over the same rows:

* :class:`FileAdapter` appends one JSON line per touch to
  ``<delivery dir>/<campaign>-<channel>.jsonl``, flushed and fsynced per
  batch. Before it appends anything it repairs the file (a torn last line
  from a crash is cut off) and reads the idempotency keys already there, so
  a row whose line made it to disk before a crash is reported delivered
  without a second line.
* :class:`WebhookAdapter` POSTs each payload as JSON with an
  ``Idempotency-Key`` header (the receiver dedupes on it), retrying
  transient failures (connection errors, 408, 429, 5xx) with exponential
  backoff. A receiver that keeps failing stops the pass early; the rows not
  tried stay pending for ``campaign resend``.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol
from urllib.parse import urlsplit

from core.errors import InputError


@dataclass(frozen=True)
class Batch:
    """Outbox rows to deliver, as columns (a send moves tens of thousands at a time)."""

    ids: list[int]
    keys: list[str]
    payloads: list[str]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Outcomes:
    """What became of a batch, row by row."""

    delivered: list[int] = field(default_factory=list)  # outbox ids, delivered on the first try
    retried: list[tuple[int, int]] = field(default_factory=list)  # (id, attempts): delivered after retries
    failed: list[tuple[int, int, str]] = field(default_factory=list)  # (id, attempts, last error)
    pending: list[tuple[int, str]] = field(default_factory=list)  # (id, why): not tried this pass

    def extend(self, other: "Outcomes") -> None:
        self.delivered += other.delivered
        self.retried += other.retried
        self.failed += other.failed
        self.pending += other.pending

    def __len__(self) -> int:
        return len(self.delivered) + len(self.retried) + len(self.failed) + len(self.pending)

    @property
    def delivered_count(self) -> int:
        return len(self.delivered) + len(self.retried)


class Adapter(Protocol):
    """Delivers a batch and says what became of each row; safe to call again on the same rows."""

    name: str

    def deliver(self, batch: Batch) -> Outcomes: ...

    def close(self) -> None: ...


def file_path(directory: Path, campaign: int, channel: str) -> Path:
    """Where the file adapter writes a campaign's messages on a channel."""
    return directory / f"{campaign}-{channel}.jsonl"


class FileAdapter:
    """One JSONL file per campaign and channel, appended durably (see the module docstring)."""

    name = "file"

    def __init__(self, directory: Path, campaign: int, channel: str) -> None:
        self.path = file_path(directory, campaign, channel)
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            created = not self.path.exists()
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise InputError(f"cannot write to the delivery directory {directory}: {exc.strerror or exc}") from None
        # One writer per file, whatever else is going on.
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        if created:
            _fsync_dir(directory)
        self.keys = self._recover()

    def _recover(self) -> set[str]:
        """Cut off a torn last line, and collect the idempotency keys already written."""
        size = os.fstat(self.fd).st_size
        data = os.pread(self.fd, size, 0) if size else b""
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            os.ftruncate(self.fd, keep)
            os.fsync(self.fd)
            data = data[:keep]
        keys = set()
        for line in data.splitlines():
            try:
                keys.add(json.loads(line)["idempotency_key"])
            except (ValueError, KeyError, TypeError):
                continue  # not ours to judge; the line stays as it is
        return keys

    def deliver(self, batch: Batch) -> Outcomes:
        fresh = [index for index, key in enumerate(batch.keys) if key not in self.keys]
        if fresh:
            data = "".join(batch.payloads[index] + "\n" for index in fresh).encode()
            view = memoryview(data)
            while view:
                written = os.write(self.fd, view)
                view = view[written:]
            os.fsync(self.fd)
            self.keys.update(batch.keys[index] for index in fresh)
        # Lines already in the file (from a run that died before recording
        # them) count as delivered: they are not written a second time.
        return Outcomes(delivered=list(batch.ids))

    def close(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


TRANSIENT_STATUS = {408, 425, 429, 500, 502, 503, 504}


class WebhookAdapter:
    """POST each touch as JSON, with an ``Idempotency-Key`` header and retries."""

    name = "webhook"

    def __init__(self, url: str, *, attempts: int = 4, backoff: float = 0.5, timeout: float = 10.0,
                 give_up_after: int = 3, sleep: Callable[[float], None] = time.sleep) -> None:
        from core.config import webhook_problem

        problem = webhook_problem(url)
        if problem:
            raise InputError(f"delivery.webhook_url: {problem}: {url!r}")
        parts = urlsplit(url)
        self.url = url
        self.parts = parts
        self.attempts = attempts
        self.backoff = backoff
        self.timeout = timeout
        self.give_up_after = give_up_after
        self.sleep = sleep
        self.connection: http.client.HTTPConnection | None = None
        # Rows in a row that failed every retry; at give_up_after the receiver
        # counts as down for the rest of this pass (one send or resend).
        self.failing_in_a_row = 0

    def _connect(self) -> http.client.HTTPConnection:
        if self.connection is None:
            cls = http.client.HTTPSConnection if self.parts.scheme == "https" else http.client.HTTPConnection
            self.connection = cls(self.parts.hostname, self.parts.port, timeout=self.timeout)
        return self.connection

    def _drop_connection(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None

    def _post(self, key: str, payload: str) -> tuple[int | None, str | None]:
        path = self.parts.path or "/"
        if self.parts.query:
            path += "?" + self.parts.query
        try:
            connection = self._connect()
            connection.request("POST", path, body=payload.encode(), headers={
                "Content-Type": "application/json", "Idempotency-Key": key,
            })
            response = connection.getresponse()
            body = response.read(500)
            if response.getheader("Connection", "").lower() == "close":
                self._drop_connection()
            if 200 <= response.status < 300:
                return response.status, None
            return response.status, f"HTTP {response.status}: {body.decode(errors='replace').strip()[:200]}"
        except (OSError, http.client.HTTPException, ValueError) as exc:  # a failed row, never a crash
            self._drop_connection()
            return None, f"{type(exc).__name__}: {exc}"

    def deliver(self, batch: Batch) -> Outcomes:
        outcomes = Outcomes()
        for index, (outbox_id, key, payload) in enumerate(zip(batch.ids, batch.keys, batch.payloads)):
            if self.failing_in_a_row >= self.give_up_after:
                # The receiver is down: leave the rest for `campaign resend`.
                outcomes.pending += [(rest, "not tried: the webhook kept failing") for rest in batch.ids[index:]]
                break
            error = None
            tries = 0
            delivered = permanent = False
            for tries in range(1, self.attempts + 1):
                code, error = self._post(key, payload)
                if error is None:
                    delivered = True
                    break
                # A 4xx other than 408/425/429 is the receiver refusing this
                # row: retrying will not change its mind.
                permanent = code is not None and code not in TRANSIENT_STATUS
                if permanent:
                    break
                if tries < self.attempts:
                    self.sleep(self.backoff * 2 ** (tries - 1))
            if delivered and tries == 1:
                outcomes.delivered.append(outbox_id)
            elif delivered:
                outcomes.retried.append((outbox_id, tries))
            else:
                outcomes.failed.append((outbox_id, tries, error or "failed"))
            self.failing_in_a_row = self.failing_in_a_row + 1 if not delivered and not permanent else 0
        return outcomes

    def close(self) -> None:
        self._drop_connection()

