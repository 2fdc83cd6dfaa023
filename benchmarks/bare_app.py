"""The floor for the webhook benchmark: a bare Flask app that answers POST /twilio/sms with empty TwiML.

It parses the form (as the real endpoint must) and does nothing else, so the gap
between it and `assistant:create_app()` is the cost of the product's own work:
signature check, the database transaction, the flow engine and the reply.

    gunicorn -w 2 -b 127.0.0.1:8001 --pythonpath benchmarks 'bare_app:create_app()'
"""

from __future__ import annotations

from flask import Flask, Response, request

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


def create_app() -> Flask:
    app = Flask(__name__)

    @app.post("/twilio/sms")
    def inbound_sms() -> Response:
        request.form.get("MessageSid")  # read and parse the body, as the real endpoint does
        return Response(EMPTY_TWIML, mimetype="text/xml")

    @app.get("/healthz")
    def healthz() -> tuple[dict[str, str], int]:
        return {"status": "ok"}, 200

    return app
