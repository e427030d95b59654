"""The shopper's own page, served by the hub (issue 11): server-rendered HTML that works on a
phone, every form plain HTML; one script (static/passkey.js) only for passkeys, which need it.

Who may use what, and what proves it:

    GET  /s/{token}                    anyone holding the card (its NDEF URI): says whether the
                                       card is set up; never shows personal data
    POST /s/{token}/claim/options|claim  anyone holding an unclaimed card: the first passkey
                                       claims it (WebAuthn, user verification), once
    GET  /me/sign-in, POST /me/sign-in/options|/me/sign-in
                                       anyone: a discoverable passkey signs its shopper in
    GET  /me, /me/sharing, /me/access, /me/cards, /me/data, /me/export.json, /me/wishlist.csv
    POST /me/wishlist/remove, /me/sharing, /me/cards/..., /me/phones/..., /me/passkeys/...,
         /me/erase, /me/sign-out       the signed-in shopper only (session cookie + CSRF token)

The card's token is never enough to change anything (the claim needs a new passkey; an
unclaimed card's page offers only the claim) and is never logged: uvicorn's access log is off
in every way the hub runs (hub/server.py), and these handlers log no path. A shopper
session is a `web_sessions` row of kind 'shopper' (hub/web.py: the cookie holds a random id,
the table its hash), valid while the shopper is not erased and the passkey it was opened
with still exists. JSON calls (the passkey steps) must be same-origin `application/json`
(a cross-site form cannot send that without a CORS preflight this hub never answers).
Claims and sign-ins are rate limited per address in the database (every process counted).

The routes are hub/shopper_signin_web.py (the card's URL, the claim, signing in and out) and
hub/shopper_me_web.py (the signed-in pages), on the helpers of hub/shopper_pages.py.
"""
from __future__ import annotations

import logging
import re

from fastapi import FastAPI

from hub import shopper_me_web, shopper_signin_web
from hub.shopper_pages import ShopperPages
from hub.shopper_pages import (  # noqa: F401  (re-exported)
    CLAIM_LIMIT, COOKIE, ShopperSession, current, shopper_language, when_text,
)
from hub.store import HubStore
from hub.web import Web

CARD_PATH = re.compile(r"/s/[^/?#\s\"]+")


class CardPathFilter(logging.Filter):
    """Rewrites a card URL's token out of uvicorn's access log lines, should an operator turn
    that log on (`--log-config`): the hub runs with it off, and this keeps it safe when on."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(CARD_PATH.sub("/s/<card>", a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str) and "/s/" in record.msg:
            record.msg = CARD_PATH.sub("/s/<card>", record.msg)
        return True


def hide_card_paths() -> None:
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, CardPathFilter) for f in access.filters):
        access.addFilter(CardPathFilter())


def add_routes(app: FastAPI, store: HubStore, web: Web, public_url: str) -> None:
    """The shopper's page on `app`: the doors, then the signed-in pages (every other /me path last)."""
    pages = ShopperPages(store, web, public_url)
    hide_card_paths()
    shopper_signin_web.add_routes(app, pages)
    shopper_me_web.add_routes(app, pages)
