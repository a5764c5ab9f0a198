"""A short way through for the two POSTs that arrive by the thousand (入会 joins, 会费 dues).

FastAPI spends about a third of a server process's CPU on each such request before and after
the handler: resolving five dependencies, validating, walking its middleware and routing
(py-spy, 64 clients; see the README's benchmark section). For a request on the common path
this middleware does the same steps directly and calls the very same endpoint function:

- the bearer token verifies (from this process's memory, or read once for every request
  presenting it meanwhile), with a writer's role;
- the Idempotency-Key header appears once and has the documented form;
- the body is `application/json` and the route's own pydantic model accepts it.

Anything else (no token, an unknown token, a bad header, a body that does not validate, a
client that goes away, a body without a Content-Length or over the size limit) is handed to
FastAPI as it came, with the body already read replayed to it, so every refusal is
FastAPI's own, word for word. Errors raised by the endpoint are answered by the application's
own exception handlers. It runs before the application's middleware stack, which cost about a
tenth of a process's CPU per request even around a request it did nothing to, and inside the
request id, access log and metrics (api/logs.py), which read the route it sets. The OpenAPI
document is untouched: the routes stay declared where they are.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable

from fastapi.routing import APIRoute, APIRouter
from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import UNAVAILABLE
from api.logs import note_token
from api.security import WRITERS, Caller, verified
from service.idempotency import KEY_PATTERN, IdempotencyKey

_KEY = re.compile(KEY_PATTERN)


class HotRoute:
    """One POST route taken the short way: its endpoint and its body's model."""

    def __init__(
        self,
        router: APIRouter,
        path: str,
        endpoint: Callable[..., Awaitable[Response]],
        body_model: type[BaseModel],
    ) -> None:
        routes = [
            r
            for r in router.routes
            if isinstance(r, APIRoute)
            and r.path == path
            and "POST" in r.methods
            and r.endpoint is endpoint
        ]
        if len(routes) != 1:
            raise ValueError(f"{endpoint.__name__} is not the one POST route {path} of the router")
        self.route = routes[0]  # what metrics read the route's template from
        self.path = path
        self.endpoint = endpoint
        self.body_model = body_model


class HotPosts:
    """The short way for `routes`, taken before the application's middleware (see
    api/app.py: LedgerApp); `app` (the application's whole stack) takes everything else.

    Being outside that stack, it leaves a body over `json_limit` (declared, or read) to the
    stack, whose size limit refuses it."""

    def __init__(
        self,
        app: ASGIApp,
        routes: list[HotRoute],
        *,
        json_limit: int,
    ) -> None:
        self.app = app
        self.routes = {r.path: r for r in routes}
        self.json_limit = json_limit

    def takes(self, scope: Scope) -> bool:
        return (
            scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in self.routes
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        hot = self.routes.get(scope["path"]) if self.takes(scope) else None
        if hot is None:
            await self.app(scope, receive, send)
            return
        headers = _single_headers(scope["headers"])
        caller = await _writer(scope, headers)
        key = headers.get(b"idempotency-key")
        content_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        declared = headers.get(b"content-length")
        if (
            caller is None
            or key is None
            or content_type != b"application/json"
            or declared is None
            or not declared.isdigit()
            or int(declared) > self.json_limit
        ):
            await self.app(scope, receive, send)
            return
        key_text = key.decode("latin-1")
        if not _KEY.fullmatch(key_text):
            await self.app(scope, receive, send)
            return
        messages, body = await _read_body(receive, self.json_limit)
        model = _validated(hot.body_model, body)
        if model is None:  # not JSON, not an object the model accepts, or no whole body
            await self.app(scope, _replaying(messages, receive), send)
            return
        scope["route"] = hot.route
        try:
            idempotency = IdempotencyKey.parse(caller.principal.idempotency_scope, key_text)
            response = await hot.endpoint(caller=caller, idempotency=idempotency, body=model)
        except Exception as exc:  # answered as the application answers it
            response = await _handled(scope, exc)
        await response(scope, receive, send)


def _single_headers(raw: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Header names (lowercase, as ASGI gives them) to values; a header sent twice among
    the ones read here is left out, so the request goes to FastAPI, which decides."""
    headers: dict[bytes, bytes] = {}
    repeated: set[bytes] = set()
    for name, value in raw:
        if name in headers:
            repeated.add(name)
        headers[name] = value
    for name in repeated & {b"authorization", b"idempotency-key", b"content-type"}:
        del headers[name]
    return headers


async def _writer(scope: Scope, headers: dict[bytes, bytes]) -> Caller | None:
    """The caller, when its token verifies and may write (as api/security.py decides:
    `Authorization: Bearer <token>`, scheme in any case). A token this process's memory no
    longer vouches for (every REVALIDATE_S) is read again here, once for all the requests
    that present it meanwhile (api/security.py: verified): until this version each of those
    went through FastAPI's whole stack, a tenth of the HTTP processes' CPU at 64 clients."""
    authorization = headers.get(b"authorization")
    if authorization is None:
        return None
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    services = scope["app"].state.services
    try:
        principal = await verified(services, token)
    except UNAVAILABLE:
        # The database cannot be asked: the whole stack takes the request and answers it as
        # every endpoint does then (503, api/errors.py), which this middleware cannot.
        return None
    if principal is None or principal.role not in WRITERS:
        return None
    note_token(scope, principal.token_id)
    return Caller(principal, services)


async def _read_body(receive: Receive, limit: int) -> tuple[list[Message], bytes | None]:
    """Every message read, and the whole body (None if the stream ended otherwise, a
    disconnect, or went past limit: reading stops there)."""
    messages: list[Message] = []
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(chunks)


def _validated(model: type[BaseModel], body: bytes | None) -> BaseModel | None:
    """The body as FastAPI would hand it to the endpoint (json.loads, then the model in
    Python mode), or None when FastAPI would refuse it."""
    if not body:
        return None
    try:
        value = json.loads(body)
        return model.model_validate(value) if isinstance(value, dict) else None
    except (ValueError, ValidationError):  # JSONDecodeError and UnicodeDecodeError included
        return None


def _replaying(messages: list[Message], receive: Receive) -> Receive:
    """A receive() that gives the messages already read first, then the client's own."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


async def _handled(scope: Scope, exc: Exception) -> Response:
    """The response the application's exception handlers give for exc (nearest class first,
    as Starlette looks them up)."""
    handlers = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            response = handler(Request(scope), exc)
            if inspect.isawaitable(response):
                response = await response
            return response
    raise exc
