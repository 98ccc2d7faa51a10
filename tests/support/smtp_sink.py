"""A local SMTP server for the tests: every message it receives is written to a directory as
one JSON file ({"from", "to", "subject", "body"}, the body decoded). Usage:

    python smtp_sink.py PORT DIRECTORY

Prints "ready" once listening; runs until killed or until its standard input closes.
"""

import email
import json
import os
import sys
import threading
from email import policy

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        part = message.get_body(preferencelist=("html", "plain"))
        record = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(message.get("subject", "")),
            "body": part.get_content() if part is not None else "",
        }
        with self.lock:
            self.count += 1
            name = "%06d-%d" % (self.count, os.getpid())
        tmp = os.path.join(self.directory, "." + name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(record, handle, ensure_ascii=False)
        os.rename(tmp, os.path.join(self.directory, name + ".json"))
        return "250 Message accepted for delivery"


def main():
    port = int(sys.argv[1])
    directory = sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Sink(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
