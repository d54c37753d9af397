#!/usr/bin/env python3
"""A real SMTP server for the developer-portal tests (aiosmtpd): every message it receives is
appended to FILE as one JSON line {"to": [...], "subject": ..., "body": ...}, the body decoded
from its transfer encoding.

    python3 smtp_sink.py PORT FILE READY

READY is created once the server listens on PORT; the sink exits when it cannot bind it.
"""
import json
import sys
import threading
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        part = message.get_body(preferencelist=("plain",))
        record = {
            "to": list(envelope.rcpt_tos),
            "from": str(message["From"]),
            "subject": str(message["Subject"]),
            "body": part.get_content() if part is not None else "",
        }
        with self.lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        return "250 OK"


def main():
    port, path, ready = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    controller = Controller(Sink(path), hostname="127.0.0.1", port=port)
    controller.start()
    open(ready, "w", encoding="utf-8").close()
    threading.Event().wait()


if __name__ == "__main__":
    main()
