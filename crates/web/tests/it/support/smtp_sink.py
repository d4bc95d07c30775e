"""An SMTP sink for the e-mail tests: aiosmtpd (an SMTP server independent
of the order desk's client) on HOST:PORT, writing each message it takes
into DIR as one JSON file, parsed by Python's own `email` package:
envelope, headers, and the decoded text and HTML parts.

Usage: python3 smtp_sink.py HOST PORT DIR — prints `ready` once listening.
"""

import email
import email.policy
import json
import os
import sys
import time
import uuid

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out):
        self.out = out

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))

        def header(name):
            value = message.get(name)
            return None if value is None else str(value)

        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": header("From"),
            "to": header("To"),
            "subject": header("Subject"),
            "list_unsubscribe": header("List-Unsubscribe"),
            "list_unsubscribe_post": header("List-Unsubscribe-Post"),
            "text": None if text is None else text.get_content(),
            "html": None if html is None else html.get_content(),
        }
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex}"
        partial = os.path.join(self.out, name + ".part")
        with open(partial, "w", encoding="utf-8") as file:
            json.dump(record, file)
        # Renamed when whole: a reader never sees half a message.
        os.rename(partial, os.path.join(self.out, name + ".json"))
        return "250 Message accepted for delivery"


def main():
    host, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    controller = Controller(Sink(out), hostname=host, port=port)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
