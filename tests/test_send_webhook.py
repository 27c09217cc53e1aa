"""The webhook adapter against a real HTTP server on 127.0.0.1 that fails, then recovers."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import send
from tests.conftest import NOW
from tests.test_campaign_support import approved, campaign_store, user

FAST = {"attempts": 2, "backoff": 0.001, "give_up_after": 3}


class Receiver:
    """Answers with whatever status ``respond(request_number)`` says; records what arrived."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.respond = lambda number: 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                number = len(receiver.requests)
                status = receiver.respond(number)
                receiver.requests.append({"key": self.headers["Idempotency-Key"], "status": status,
                                          "type": self.headers["Content-Type"], "body": json.loads(body)})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook?shop=test"

    def accepted(self) -> list[str]:
        return [request["key"] for request in self.requests if request["status"] == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def shop(store, receiver):
    store.config_path.write_text(store.config_path.read_text() + f'\n[delivery]\nwebhook_url = "{receiver.url}"\n')
    store.reload_config()
    return campaign_store(store, 12)


def test_a_receiver_that_is_down_then_recovers(store, shop, receiver):
    campaign = approved(store)
    receiver.respond = lambda number: 503
    report = send.send(store, user(store, "ava"), campaign.id, NOW, webhook=FAST)
    assert report.adapter == "webhook" and report.state == "sent" and report.touched == 12
    # Three rows tried every retry and failed; the rest were not tried while it was down.
    assert (report.failed, report.pending, report.delivered) == (3, 9, 0) and report.partial
    assert len(receiver.requests) == 3 * FAST["attempts"]
    assert any("HTTP 503" in error for error in report.errors)
    receiver.respond = lambda number: 200
    again = send.resend(store, user(store, "ava"), campaign.id, NOW, webhook=FAST)
    assert (again.delivered, again.failed, again.pending) == (12, 0, 0) and not again.partial
    accepted = receiver.accepted()
    assert len(accepted) == len(set(accepted)) == 12  # nothing delivered was posted again
    keys = {row[0] for row in store.conn.execute("SELECT idempotency_key FROM outbox")}
    assert set(accepted) == keys
    assert all(request["type"] == "application/json" for request in receiver.requests)
    assert all(request["body"]["idempotency_key"] == request["key"] for request in receiver.requests)
    # A second resend has nothing left to do.
    before = len(receiver.requests)
    send.resend(store, user(store, "ava"), campaign.id, NOW, webhook=FAST)
    assert len(receiver.requests) == before


def test_retries_with_backoff_ride_out_a_short_outage(store, shop, receiver):
    campaign = approved(store)
    receiver.respond = lambda number: 502 if number < 2 else 200
    report = send.send(store, user(store, "ava"), campaign.id, NOW,
                       webhook={"attempts": 4, "backoff": 0.001, "give_up_after": 3})
    assert (report.delivered, report.failed) == (12, 0)
    first = store.rows("SELECT attempts, status FROM outbox ORDER BY id LIMIT 1")[0]
    assert first == {"attempts": 3, "status": "delivered"}
    assert len(receiver.accepted()) == 12


def test_a_refused_row_is_not_retried(store, shop, receiver):
    campaign = approved(store)
    receiver.respond = lambda number: 400 if number == 0 else 200
    report = send.send(store, user(store, "ava"), campaign.id, NOW, webhook=FAST)
    assert (report.delivered, report.failed) == (11, 1)
    failed = store.rows("SELECT attempts, last_error FROM outbox WHERE status = 'failed'")[0]
    assert failed["attempts"] == 1 and failed["last_error"].startswith("HTTP 400")


def test_an_unreachable_receiver_fails_cleanly(store, shop, receiver):
    campaign = approved(store)
    receiver.close()
    report = send.send(store, user(store, "ava"), campaign.id, NOW, webhook=FAST)
    assert report.delivered == 0 and report.failed == 3 and report.pending == 9
    assert any("ConnectionRefusedError" in error or "Connection refused" in error for error in report.errors)
