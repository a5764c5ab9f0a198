"""The HTTP service: the FastAPI application over the ledger (docs/api.md)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from api.console import pages as console
from api.console import reconciliation_pages as console_reconciliations
from api.errors import install_error_handlers
from api.hot_posts import HotPosts, HotRoute
from api.limits import BodySizeLimit
from api.logs import RequestObserver
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
    reconciliations,
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
    """FastAPI, with the request id, access log and metrics around every HTTP request
    (api/logs.py), and inside them the short way for the busiest POSTs (api/hot_posts.py) in
    front of its whole middleware stack."""

    hot_posts: HotPosts | None = None
    observer: RequestObserver | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.observer is not None and scope["type"] == "http":
            await self.observer(scope, receive, send, self._dispatch)
        else:
            await self._dispatch(scope, receive, send)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        # /docs and /redoc are served below with their assets from this server.
        docs_url=None,
        redoc_url=None,
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
        reconciliations,
        operations,
    ):
        app.include_router(module.router)
    app.include_router(reconciliations.alerts_router)
    serve_console_and_docs(app)
    if short_path:
        app.hot_posts = HotPosts(
            app.whole_stack,
            [
                HotRoute(members.router, "/v1/members", members.join_member, JoinMember),
                HotRoute(funds.router, "/v1/funds/dues", funds.record_dues, RecordDues),
            ],
            json_limit=settings.max_json_body_bytes,
        )
    app.add_middleware(
        BodySizeLimit,
        json_limit=settings.max_json_body_bytes,
        import_limit=settings.max_import_body_bytes,
    )
    # Outside everything, so that refused (413) requests are counted and logged too.
    app.observer = RequestObserver(metrics=lambda: app.state.services.metrics)
    return app


DOCS_ASSETS = Path(fastapi_offline.__file__).parent / "static"
CONSOLE_ASSETS = Path(console.__file__).parent / "static"
REDOC_LOGO_URL = b"https://cdn.redoc.ly/redoc/logo-mini.svg"


def serve_console_and_docs(app: FastAPI) -> None:
    """The console (GET / and /console/...) and the OpenAPI pages, every script, style sheet
    and icon from this server: Swagger UI's and ReDoc's come with the fastapi-offline
    package, the console's own are in api/console/static."""
    app.include_router(console.router)
    app.include_router(console_reconciliations.router)
    app.mount("/console/static", StaticFiles(directory=CONSOLE_ASSETS), name="console-static")
    redoc_js = (
        (DOCS_ASSETS / "redoc.standalone.js")
        .read_bytes()
        .replace(REDOC_LOGO_URL, b"/docs-assets/favicon.png")
    )

    @app.get("/docs-assets/redoc.standalone.js", include_in_schema=False)
    async def redoc_script() -> Response:
        # ReDoc's footer shows a logo from its makers' CDN: this copy shows our icon instead.
        return Response(
            redoc_js,
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.mount("/docs-assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - Swagger UI",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon.png",
            # No validator badge: it would send the document to validator.swagger.io.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(
            openapi_url="/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url="/docs-assets/redoc.standalone.js",
            redoc_favicon_url="/docs-assets/favicon.png",
            with_google_fonts=False,
        )
