"""The HTTP service: the FastAPI application over the ledger (see ../shared/api.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from api.errors import install_error_handlers
from api.hot_posts import HotPosts, HotRoute
from api.limits import BodySizeLimit
from api.metrics import MetricsMiddleware
from api.models.funds import RecordDues
from api.models.members import JoinMember
from api.routers import (
    audit,
    funds,
    imports,
    levy_policies,
    members,
    operations,
    organizations,
    registers,
    rolls,
    statements,
)
from api.services import Services
from storage.settings import Settings, get_settings

DESCRIPTION = """\
工会会员与经费账簿 — the trade-union membership and fund ledger.

Every /v1 request needs `Authorization: Bearer <token>` (mint one with `ledger token create
--role clerk|auditor|admin [--organization CODE] [--pii] [--expires-in DAYS]`), and every POST
an `Idempotency-Key`. Amounts are decimal strings; errors are `application/problem+json`.
"""


class LedgerApp(FastAPI):
    """FastAPI, with the short way for the busiest POSTs (api/hot_posts.py) in front of its
    whole middleware stack."""

    hot_posts: HotPosts | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hot_posts is not None and self.hot_posts.takes(scope):
            scope["app"] = self  # as Starlette sets it: the handlers and services read it
            await self.hot_posts(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def whole_stack(self, scope: Scope, receive: Receive, send: Send) -> None:
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, short_path: bool = True) -> FastAPI:
    """The application. short_path=False leaves out api/hot_posts.py (the tests compare the
    answers of both)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = Services.open(settings)
        app.state.services.start()
        try:
            yield
        finally:
            app.state.services.close()

    app = LedgerApp(
        title="Union Ledger API (工会会员与经费账簿)",
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's built-in OpenTelemetry hooks: off, as no provider is configured here; left
        # on, they look the providers up on every request (a few % of the CPU per request).
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    install_error_handlers(app)
    for module in (
        organizations,
        members,
        imports,
        rolls,
        funds,
        registers,
        levy_policies,
        statements,
        audit,
        operations,
    ):
        app.include_router(module.router)
    if short_path:
        app.hot_posts = HotPosts(
            app.whole_stack,
            [
                HotRoute(members.router, "/v1/members", members.join_member, JoinMember),
                HotRoute(funds.router, "/v1/funds/dues", funds.record_dues, RecordDues),
            ],
            metrics=lambda: app.state.services.metrics,
            json_limit=settings.max_json_body_bytes,
        )
    app.add_middleware(
        BodySizeLimit,
        json_limit=settings.max_json_body_bytes,
        import_limit=settings.max_import_body_bytes,
    )
    # Outermost, so that refused (413) requests are counted too.
    app.add_middleware(MetricsMiddleware, metrics=lambda: app.state.services.metrics)
    return app
