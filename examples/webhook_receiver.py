"""A minimal receiver of the SPA platform's webhooks, for integration engines to copy from.

It verifies each delivery with the ``standardwebhooks`` package (the signature covers the
webhook-id, the timestamp and the exact body; timestamps more than five minutes off are
refused), ignores a webhook-id it has already handled (deliveries are at least once), and
answers 2xx only once the event is safely handled: anything else is retried.

    SPA_WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py 8080

Events are thin: ids, codes and links. Fetch the referral itself with an authenticated GET.
"""

from __future__ import annotations

import json
import os
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

from standardwebhooks import Webhook, WebhookVerificationError

MAX_BODY = 1_000_000


def verify(secret: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The event, if the delivery is genuine and recent; else WebhookVerificationError."""
    event: dict[str, Any] = Webhook(secret).verify(body, headers)
    return event


class Handler(BaseHTTPRequestHandler):
    secret: ClassVar[str] = os.environ.get("SPA_WEBHOOK_SECRET", "")
    # A real receiver keeps these in its own store, for as long as deliveries are retried.
    seen: ClassVar[set[str]] = set()

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        if length > MAX_BODY:
            self.send_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            self.end_headers()
            return
        body = self.rfile.read(length)
        try:
            event = verify(self.secret, body, dict(self.headers.items()))
        except WebhookVerificationError:
            self.send_response(HTTPStatus.BAD_REQUEST)
            self.end_headers()
            return
        message_id = self.headers["webhook-id"]
        if message_id not in self.seen:
            self.seen.add(message_id)
            # Order by data.seq per referral; a gap means an event is still on its way.
            data = event.get("data", {})
            print(json.dumps({"type": event["type"], "seq": data.get("seq")}), flush=True)
        self.send_response(HTTPStatus.NO_CONTENT)
        self.end_headers()


def main() -> None:
    if not Handler.secret:
        sys.exit("set SPA_WEBHOOK_SECRET to the secret shown when the subscription was made")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
