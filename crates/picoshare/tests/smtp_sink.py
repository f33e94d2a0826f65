"""A real SMTP server on loopback for the e-mail notification tests
(crates/picoshare/tests/it/email.rs), built on aiosmtpd (installed by
scripts/test with pip when missing).

It saves every message it accepts as one JSON file in --dir (written whole,
then renamed into place, so a reader never sees half of one): the envelope
(sender, recipients), whether the session was encrypted and who logged in,
every header as sent, the decoded subject and the decoded text body (its
lines ended with LF). It
prints `listening on PORT` once it accepts connections, and runs until it is
killed.

Options: --port (0: any free port), --fail-first N (answer 451 to the first
N messages, a server that is up but refuses for now), --auth USER:PASSWORD
(require a login), --cert/--key (offer STARTTLS and require it; with
--implicit-tls, TLS from the first byte instead).
"""

import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl

from aiosmtpd.smtp import SMTP, AuthResult


class Sink:
    def __init__(self, directory, fail_first):
        self.directory = directory
        self.fail_first = fail_first
        self.seen = 0

    async def handle_DATA(self, server, session, envelope):
        self.seen += 1
        if self.seen <= self.fail_first:
            return "451 4.3.0 Try again later (test refusal)"
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        auth = session.auth_data
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "auth_user": auth.login.decode() if auth is not None else None,
            "headers": [[k, str(v)] for k, v in msg.items()],
            "subject": str(msg["subject"]),
            "content_type": msg.get_content_type(),
            "charset": msg.get_content_charset(),
            # (Lines end in CRLF on the wire; saved with LF.)
            "body": body.get_content().replace("\r\n", "\n")
            if body is not None
            else None,
        }
        name = f"{self.seen:06d}.json"
        tmp = os.path.join(self.directory, f".{name}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(self.directory, name))
        return "250 2.0.0 Saved"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--auth")
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--implicit-tls", action="store_true")
    args = p.parse_args()

    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)

    options = {"hostname": "sink.test", "ident": "picoshare-test-sink"}
    if context is not None and not args.implicit_tls:
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        user, password = args.auth.split(":", 1)

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (
                auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            return AuthResult(success=ok, handled=False, auth_data=auth_data)

        options.update(
            authenticator=authenticator,
            auth_required=True,
            # (With implicit TLS, aiosmtpd does not know that the
            # connection is encrypted: the whole session is.)
            auth_require_tls=context is not None and not args.implicit_tls,
        )

    sink = Sink(args.dir, args.fail_first)

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(sink, **options),
            host="127.0.0.1",
            port=args.port,
            ssl=context if args.implicit_tls else None,
        )
        port = server.sockets[0].getsockname()[1]
        print(f"listening on {port}", flush=True)
        await server.serve_forever()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
