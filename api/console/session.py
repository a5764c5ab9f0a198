"""The console's sign-in: an API token held in an HttpOnly, SameSite=Strict cookie, and a
double-submit token against cross-site forms.

- The token never appears in a URL: it is posted once by the sign-in form and kept in the
  `ledger_session` cookie, which scripts cannot read and no other site's request carries.
- Every form that writes (sign-in, sign-out) carries `csrf`, which must equal the random
  `ledger_csrf` cookie (set by the page that shows the form) and the request's Origin, when
  sent, must be this server. A new value is chosen at sign-in and sign-out.
- The token is verified on every request exactly as the API verifies a Bearer token
  (api/security.py `verified`): a revoked or expired token signs the console out too.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from fastapi.responses import Response

from api.errors import Forbidden
from api.security import READERS, Caller, verified
from api.services import Services

SESSION_COOKIE = "ledger_session"
CSRF_COOKIE = "ledger_csrf"
CSRF_FIELD = "csrf"
SESSION_MAX_AGE_S = 8 * 3600  # a working day; the token's own expiry still applies


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def csrf_value(request: Request) -> str:
    """The form's CSRF value: the cookie's, or a new one (set_csrf() stores it)."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if len(current) == 43:  # token_urlsafe(32)
        return current
    return secrets.token_urlsafe(32)


def set_csrf(request: Request, response: Response, value: str) -> None:
    if request.cookies.get(CSRF_COOKIE) != value:
        response.set_cookie(
            CSRF_COOKIE,
            value,
            httponly=True,
            samesite="strict",
            secure=_secure(request),
            path="/",
        )


def check_form(request: Request, form_value: object) -> None:
    """403 for a form that did not come from a page of this server."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise Forbidden("该表单并非来自本系统的页面 (cross-site request refused)")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (
        isinstance(form_value, str)
        and cookie
        and hmac.compare_digest(form_value.encode(), cookie.encode())
    ):
        raise Forbidden("表单已过期或不是本系统的页面提交的，请重新打开页面 (CSRF check failed)")


def sign_in(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=SESSION_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )
    response.set_cookie(
        CSRF_COOKIE,
        secrets.token_urlsafe(32),
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )


def sign_out(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )
    response.delete_cookie(
        CSRF_COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request)
    )


async def session_caller(request: Request, svc: Services) -> Caller | None:
    """The signed-in caller, or None (no cookie, or a token no longer valid)."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 512:
        return None
    principal = await verified(svc, token)
    if principal is None or principal.role not in READERS:
        return None
    return Caller(principal, svc)
