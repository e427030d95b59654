"""The channel API (issue 12): what a brand's web shop or app does with the shopper's wishlist,
holding an access token the shopper granted it (hub/oauth.py, `Authorization: Bearer ...`).

    GET    /v1/channel/wishlist               the items this brand may see, stock per store; ETag
    POST   /v1/channel/wishlist/items         {"event_id": uuid, "gtin"}   201 / 200 again / 409
    POST   /v1/channel/wishlist/remove        {"event_id": uuid, "tags": [...]}  observed remove
    POST   /v1/channel/wishlist/merge         {"items": [{"event_id", "gtin"}, ...]}  guest list
    GET    /v1/channel/scans                  in-store scans at this brand's stores (scope scans)
    POST   /v1/channel/shelf-watches          {"gtin", "store_code"}  tell me when it is on the shelf
    GET    /v1/channel/shelf-watches          the shopper's watches at this brand's stores
    DELETE /v1/channel/shelf-watches?gtin=&store_code=

What a token may see and what each write does (the kiosk's rules: receipts by client event
id, observed removes, a guest list merged once) are hub/channel.py's. Errors are RFC 9457
problems; nothing here returns a 500 for bad input.
"""
from __future__ import annotations

import hashlib
import json

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from kiosk import api
from hub import channel, inputs, shelf
from hub.brand_api import _problem  # the brand API's RFC 9457 problem model, documented once
from hub.store import HubFailure, HubStore

PREFIX = "/v1/channel"
MAX_BODY_BYTES = 256 * 1024  # a merge of MAX_MERGE items fits many times over


PROBLEMS = {401: _problem("no valid access token"), 403: _problem("the token lacks the scope"),
            404: _problem("not found for this brand"), 409: _problem("event id used with another body"),
            413: _problem("body too large"), 422: _problem("invalid request")}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AddBody(Strict):
    event_id: str = Field(max_length=36, description="a UUID the client made for this add (retries send it again)")
    gtin: str = Field(max_length=14, description="GTIN-8, 12, 13 or 14")


class RemoveBody(Strict):
    event_id: str = Field(max_length=36)
    tags: list[str] = Field(max_length=channel.MAX_TAGS, description="the add tags of the item the client had seen")


class MergeBody(Strict):
    items: list[AddBody] = Field(max_length=channel.MAX_MERGE, description="the guest list, each item with its event id")


class WatchBody(Strict):
    gtin: str = Field(max_length=14)
    store_code: str = Field(max_length=32)


def need(access, scope: str) -> None:
    """403 insufficient_scope (RFC 6750 3.1) unless the shopper granted the client `scope`."""
    from hub import oauth
    oauth.require_scope(access, scope)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def matches(if_none_match: str, etag: str) -> bool:
    """If-None-Match, weak comparison (RFC 9110 13.1.2): "*", or any listed tag equal to ours."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(t.strip().removeprefix("W/") == bare for t in if_none_match.split(","))


def add_routes(app: FastAPI, store: HubStore) -> None:
    def access(request: Request, authorization: str = Header(default="")):
        """The calling client and shopper, from the bearer access token (hub/oauth.py)."""
        found = request.scope.get("state", {}).get("channel_access")  # a gate may have checked it
        if found is not None:
            return found
        if len(authorization) > 4096:
            raise HubFailure(api.P_UNAUTHORIZED, "a valid access token is required", 401,
                             headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        from hub import oauth
        return oauth.authenticate(store, authorization)

    router = APIRouter(prefix=PREFIX, tags=["channel"], responses=PROBLEMS)

    @router.get("/wishlist")
    def wishlist(lang: str = Query(default="", max_length=35),
                 if_none_match: str = Header(default="", max_length=2048), who=Depends(access)) -> Response:
        """The wishlist as this brand may see it, each item with its stock in the brand's stores.
        Send the ETag back in If-None-Match: 304 while nothing changed."""
        need(who, channel.SCOPE_WISHLIST)
        inputs.text(lang, "lang", 35)
        body = json.dumps(channel.read_wishlist(store, who, lang), sort_keys=True, separators=(",", ":"),
                          ensure_ascii=False).encode()
        etag = etag_of(body)
        headers = {"ETag": etag, "Cache-Control": "private, no-cache", "Vary": "Authorization"}
        if matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="application/json", headers=headers)

    @router.post("/wishlist/items", status_code=201)
    def add(body: AddBody, response: Response, who=Depends(access)) -> dict:
        """Save one item: 201 the first time, 200 for the same event id and item again (a
        retry), 409 for the same event id with another item."""
        need(who, channel.SCOPE_WISHLIST)
        status, answer = channel.add_item(store, who, body.event_id, body.gtin)
        response.status_code = status
        return answer

    @router.post("/wishlist/remove")
    def remove(body: RemoveBody, who=Depends(access)) -> dict:
        """Take away the adds the client had seen of an item (their tags, from a read)."""
        need(who, channel.SCOPE_WISHLIST)
        return channel.remove_items(store, who, body.event_id, body.tags)

    @router.post("/wishlist/merge")
    def merge_guest_list(body: MergeBody, who=Depends(access)) -> dict:
        """The shop's guest list into the profile, once: a union by GTIN, safe to send again."""
        need(who, channel.SCOPE_WISHLIST)
        return channel.merge(store, who, body.items)

    @router.get("/scans")
    def scans(lang: str = Query(default="", max_length=35), who=Depends(access)) -> dict:
        """The shopper's product scans at this brand's kiosks in the last 90 days, newest first."""
        need(who, channel.SCOPE_SCANS)
        inputs.text(lang, "lang", 35)
        return channel.read_scans(store, who, lang)

    @router.post("/shelf-watches", status_code=201)
    def watch(body: WatchBody, response: Response, who=Depends(access)) -> dict:
        """Tell me when it is on the shelf here: a wishlist item at one of the brand's stores.
        201 new, 200 watched already."""
        need(who, channel.SCOPE_WISHLIST)
        store_id = shelf.store_of(store, who.brand_id, body.store_code)
        gtin = shelf.gtin_of(body.gtin)
        with store.transaction() as conn:
            channel.own_product(conn, who, gtin)
        created = shelf.add_watch(store, who.shopper_id, gtin, store_id, via=who.channel)
        response.status_code = 201 if created else 200
        return {"gtin": gtin, "store_code": body.store_code, "status": "created" if created else "unchanged"}

    @router.get("/shelf-watches")
    def watches(lang: str = Query(default="", max_length=35), who=Depends(access)) -> dict:
        need(who, channel.SCOPE_WISHLIST)
        inputs.text(lang, "lang", 35)
        locale = store.one("SELECT locale FROM shoppers WHERE id=?", (who.shopper_id,))
        found = shelf.watches_of(store, who.shopper_id, channel.answer_language(locale[0] if locale else "", lang),
                                 brand_id=who.brand_id)
        return {"watches": [{k: w[k] for k in ("gtin", "title", "store_code", "store_name", "created_at", "on_shelf",
                                               "quantity", "location")} for w in found]}

    @router.delete("/shelf-watches", status_code=204)
    def unwatch(gtin: str = Query(max_length=14), store_code: str = Query(max_length=32),
                who=Depends(access)) -> Response:
        need(who, channel.SCOPE_WISHLIST)
        store_id = shelf.store_of(store, who.brand_id, store_code)
        if not shelf.remove_watch(store, who.shopper_id, gtin, store_id):
            raise HubFailure(api.P_NOT_FOUND, "no such shelf watch", 404)
        return Response(status_code=204)

    app.include_router(router)
