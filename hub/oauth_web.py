"""The OAuth 2.0 doors of the hub on HTTP (issue 12); the rules themselves are hub/oauth.py.

Who may use each door, and what proves it:

    GET  /.well-known/oauth-authorization-server   anyone: the RFC 8414 metadata
    GET  /oauth/authorize      a brand's web shop or app sends the shopper here. A client known
                               here and its exact registered redirect URI, else an error page
                               (never a redirect); then PKCE S256 and the scopes, else an OAuth
                               error back at the redirect URI. Not signed in: 303 to
                               /me/sign-in?next=<this URL>. Signed in: the consent screen.
    POST /oauth/authorize      the signed-in shopper only: same origin, the session's CSRF
                               token. The scopes ticked -> 303 redirect_uri?code=...&state=...;
                               "Don't allow" (or nothing ticked) -> error=access_denied.
    POST /oauth/token          a public client: the code with its PKCE verifier and the same
                               redirect URI, or a refresh token issued to it (rotated each use)
    POST /oauth/revoke         a public client: one of its own tokens (RFC 7009)

The token and revocation endpoints take application/x-www-form-urlencoded bodies (at most
16 KiB, each parameter once) and answer JSON errors of RFC 6749 §5.2 (invalid_request,
invalid_client, invalid_grant, unauthorized_client, unsupported_grant_type, invalid_scope).
"""
from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, quote, urlsplit

from authlib.oauth2.rfc6749.errors import OAuth2Error
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from hub import oauth
from hub.shopper_web import current, shopper_language, when_text
from hub.store import HubStore
from hub.web import CSP, SECURITY_HEADERS, Refused, Web

log = logging.getLogger(__name__)
N_ = oauth.N_
MAX_FORM_BYTES = 16 * 1024
AUTHORIZE = "/oauth/authorize"


def _respond(status: int, body, headers) -> Response:
    """Authlib's (status, body, headers) as a Starlette response; its 302s are 303s (a
    redirect after the consent form's POST must become a GET)."""
    headers = dict(headers or [])
    if status == 302:
        return Response(status_code=303, headers={**SECURITY_HEADERS, **headers})
    kind = headers.pop("Content-Type", "application/json")
    content = json.dumps(body) if isinstance(body, (dict, list)) else (body or "")
    return Response(content, status_code=status, headers=headers, media_type=kind)


def redirect_source(uri: str) -> str:
    """A redirect URI as a CSP source: https://shop.example:8443, or com.example.app: for an app."""
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.netloc and all(c not in parts.netloc for c in " ;,'\""):
        return f"{parts.scheme}://{parts.netloc}"
    if parts.scheme and parts.scheme.replace(".", "").replace("-", "").replace("+", "").isalnum():
        return f"{parts.scheme}:"
    return ""


def _fields(text: str) -> dict[str, list[str]] | None:
    try:
        return parse_qs(text, keep_blank_values=True, max_num_fields=40, strict_parsing=False)
    except ValueError:
        return None


def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def add_routes(app: FastAPI, store: HubStore, web: Web, public_url: str = "") -> oauth.Server:
    server = oauth.Server(store, _respond)
    server.create_oauth2_request = lambda request: request  # handed `oauth.Incoming` requests only
    app.state.oauth = server

    def incoming(request: Request, fields: dict[str, list[str]]) -> oauth.Incoming:
        return oauth.Incoming(request.method, str(request.url), dict(request.headers), fields)

    language = shopper_language

    def page(request: Request, template: str, session=None, status: int = 200, **context) -> Response:
        lang = language(request, session)
        return web.page(request, template, status=status, lang=lang, signed_in=session is not None,
                        csrf=session.csrf if session else "", notice="", section="",
                        when=lambda then: when_text(lang, then), **context)

    def error_page(request: Request, status: int, message: str, detail: str = "", session=None) -> Response:
        lang = language(request, session)
        return page(request, "oauth_error.html", session=session, status=status,
                    message=web.gettext(lang, message), detail=detail)

    def refusal(request: Request, error: OAuth2Error, session=None) -> Response:
        """An OAuth error: back to the client's redirect URI once that URI is proven the
        client's own; before that (an unknown client, a wrong redirect URI), a page."""
        if error.redirect_uri:
            return _respond(*error())
        return error_page(request, 400, N_("This sign-in link is not valid: the web shop or app that sent you here "
                                           "is not known here, or gave a wrong return address. Nothing was shared."),
                          detail=f"{error.error}: {error.description or ''}", session=session)

    def guarded(handler):
        async def run(request: Request):
            try:
                return await handler(request)
            except Refused as refused:
                return await run_in_threadpool(error_page, request, refused.status, refused.message)
            except Exception as exc:  # noqa: BLE001 - a page never shows a trace
                log.error("an OAuth page failed: %s", type(exc).__name__)
                return error_page(request, 500, N_("Something went wrong on our side; nothing was changed."))
        run.__name__ = handler.__name__
        return run

    def consent_page(request: Request, session, grant, query: str) -> Response:
        client = grant.client
        requested = oauth._scopes(grant.request.scope)
        response = page(request, "oauth_consent.html", session=session, client=client, query=query,
                        scopes=[{"name": s, "text": oauth.SCOPES[s], "other_brands": s == oauth.OTHER_BRANDS}
                                for s in requested],
                        # the ledger's answer shows here as at the other two doors: never pre-ticked over a "no"
                        ledger_granted=oauth.ledger_granted(store, session.shopper_id, client.brand_id),
                        ledger_state=oauth.ledger_state(store, session.shopper_id, client.brand_id))
        # Chromium holds a form post's redirect to `form-action` too: the consent form may lead
        # to this one client's proven redirect URI, and nowhere else
        target = redirect_source(grant.request.payload.redirect_uri or "")  # proven the client's by now
        if target:
            response.headers["Content-Security-Policy"] = CSP.replace("form-action 'self'",
                                                                      f"form-action 'self' {target}")
        return response

    @app.get("/.well-known/oauth-authorization-server", include_in_schema=False)
    def metadata(request: Request) -> JSONResponse:
        issuer = (public_url or f"{request.url.scheme}://{request.headers.get('host', '')}").rstrip("/")
        return JSONResponse({
            "issuer": issuer, "authorization_endpoint": issuer + AUTHORIZE, "token_endpoint": issuer + "/oauth/token",
            "revocation_endpoint": issuer + "/oauth/revoke", "scopes_supported": list(oauth.SCOPES),
            "response_types_supported": ["code"], "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_methods_supported": ["none"], "revocation_endpoint_auth_methods_supported": ["none"],
            "code_challenge_methods_supported": ["S256"]}, headers={"Cache-Control": "max-age=3600"})

    @app.get(AUTHORIZE, include_in_schema=False)
    @guarded
    async def authorize(request: Request) -> Response:
        def show():
            query = request.url.query
            try:
                grant = server.get_consent_grant(incoming(request, _fields(query) or {}))
            except OAuth2Error as error:
                return refusal(request, error)
            session = current(web, request)
            if session is None:
                return web.redirect("/me/sign-in?next=" + quote(f"{AUTHORIZE}?{query}", safe=""))
            return consent_page(request, session, grant, query)
        return await run_in_threadpool(show)

    @app.post(AUTHORIZE, include_in_schema=False)
    @guarded
    async def decide(request: Request) -> Response:
        web.check_origin(request)
        form = await web.form(request)

        def act():
            query = form.get("request", "")
            session = current(web, request)
            if session is None:
                return web.redirect("/me/sign-in?next=" + quote(f"{AUTHORIZE}?{query}", safe=""))
            web.check_csrf(session.csrf, form.get("csrf", ""))
            params = _fields(query) or {}
            try:
                grant = server.get_consent_grant(incoming(request, params))
            except OAuth2Error as error:
                return refusal(request, error, session)
            requested = oauth._scopes(grant.request.scope)
            chosen = [s for s in requested if form.get("scope_" + s) == "yes"]
            if form.get("decision") != "allow" or not chosen:
                return server.create_authorization_response(grant.request, grant_user=None, grant=grant)
            oauth.consent(store, session.shopper_id, grant.client, requested, chosen)
            params = {**params, "scope": [" ".join(chosen)]}
            granted = server.get_consent_grant(incoming(request, params))
            log.info("a shopper granted a %s client of %s", granted.client.kind, granted.client.brand_id)
            return server.create_authorization_response(granted.request, grant_user=oauth.Shopper(session.shopper_id),
                                                        grant=granted)
        return await run_in_threadpool(act)

    async def read_form(request: Request) -> dict[str, list[str]] | JSONResponse:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return oauth_error("invalid_request", "send application/x-www-form-urlencoded")
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return oauth_error("invalid_request", "the body is too large")
        try:
            fields = _fields(body.decode("utf-8"))
        except UnicodeDecodeError:
            fields = None
        if fields is None:
            return oauth_error("invalid_request", "the form could not be read")
        repeated = [k for k, v in fields.items() if len(v) > 1]
        if repeated:
            return oauth_error("invalid_request", f"'{repeated[0][:40]}' is given more than once")
        return fields

    @app.post("/oauth/token", include_in_schema=False)
    async def token(request: Request) -> Response:
        fields = await read_form(request)
        if isinstance(fields, Response):
            return fields
        try:
            return await run_in_threadpool(server.create_token_response, incoming(request, fields))
        except OAuth2Error as error:  # e.g. insecure_transport, raised before any grant is found
            return _respond(*error())

    @app.post("/oauth/revoke", include_in_schema=False)
    async def revoke(request: Request) -> Response:
        fields = await read_form(request)
        if isinstance(fields, Response):
            return fields
        try:
            return await run_in_threadpool(server.create_endpoint_response, "revocation", incoming(request, fields))
        except OAuth2Error as error:
            return _respond(*error())

    return server
