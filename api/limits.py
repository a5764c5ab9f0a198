"""The request-size cap: a declared Content-Length over the limit is refused before anything
is read; a body that streams past the limit (chunked, or a lying length) is cut off and
answered 413 all the same. Roster uploads get a larger cap than JSON bodies."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

IMPORT_PATH = "/v1/members/imports"
# File uploads: roster imports and month-end reconciliation runs (a bank statement, a levy file).
UPLOAD_PATHS = frozenset({IMPORT_PATH, "/v1/reconciliations"})


def _problem_413(limit: int) -> tuple[dict, bytes]:
    body = json.dumps(
        {
            "type": "urn:union-ledger:problem:request-too-large",
            "title": "Request too large",
            "status": 413,
            "detail": f"the request body is larger than {limit} bytes",
        }
    ).encode()
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, body


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, json_limit: int, import_limit: int) -> None:
        self.app = app
        self.json_limit = json_limit
        self.import_limit = import_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.import_limit if scope["path"] in UPLOAD_PATHS else self.json_limit
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(send, limit)
            return
        received = 0
        exceeded = False
        responded = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    # The app sees the client go away; the 413 below replaces its answer.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal responded
            if exceeded:
                if message["type"] == "http.response.start" and not responded:
                    responded = True
                    await self._refuse(send, limit)
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)
        if exceeded and not responded:
            await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        start, body = _problem_413(limit)
        await send(start)
        await send({"type": "http.response.body", "body": body})
