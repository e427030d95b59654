"""The brand API: what a brand's ERP, POS, marketing tool and technicians send the hub.

Who may call: a holder of one of the brand's API keys (`Authorization: Bearer bk_...`),
checked at the gate (hub/app.py) before any body is read. What it proves: that brand, and
only that brand. Every call below is scoped to it: another brand's product, store, offer,
code or kiosk is answered 404, exactly like one that does not exist. No call here reads
shopper data. Errors are RFC 9457 problems; the calls are in the OpenAPI document.

    POST /v1/brand/products:batch      {"products": [...]}      per-row report
    POST /v1/brand/inventory:batch     {"rows": [...], "snapshot": false}   Idempotency-Key
    POST /v1/brand/enrollment-codes    {"store_code": "hcm"}    a one-time code
    POST /v1/brand/devices/{id}:revoke                          the kiosk is refused at once
    POST /v1/brand/clients             {"name", "redirect_uris", "kind"}  a web shop's or app's
                                       OAuth client id (public client, PKCE; hub/oauth.py)
"""
from __future__ import annotations

import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from pydantic import BaseModel, Field

from kiosk import api
from hub import brands, inputs
from hub.store import HubFailure, HubStore

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024 * 1024  # a 5,000-row batch with long texts; an image of up to 8 MiB
MAX_IMAGE_BYTES = 8 * 1024 * 1024
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp")
MAX_QUEUED_FETCHES = 200  # image URLs of one brand waiting in one process


class Problem(BaseModel):
    """An RFC 9457 problem (application/problem+json)."""
    type: str
    title: str
    status: int
    detail: str


def _problem(description: str) -> dict:
    return {"description": description, "model": Problem, "content": {"application/problem+json": {}}}


PROBLEMS = {401: _problem("no valid brand key"), 404: _problem("not found in this brand"),
            413: _problem("body too large"), 422: _problem("invalid request"), 429: _problem("rate limited"),
            503: _problem("the hub is busy or its database unavailable")}


class RowResult(BaseModel):
    index: int
    key: str
    status: str = Field(description="created | updated | unchanged | stale | rejected")
    errors: list[dict[str, str]] = Field(description='[{"field": ..., "reason": ...}] for a rejected row')


class BatchReport(BaseModel):
    results: list[RowResult]
    counts: dict[str, int]
    zeroed: int | None = Field(default=None, description="inventory snapshot: rows set to 0")
    replayed: bool | None = None


class ProductsBody(BaseModel):
    products: list[Any] = Field(max_length=brands.MAX_ROWS)


class StoresBody(BaseModel):
    stores: list[Any] = Field(max_length=brands.MAX_ROWS)


class StockBody(BaseModel):
    rows: list[Any] = Field(max_length=brands.MAX_ROWS)
    snapshot: bool = Field(default=False, description="the rows are one store's whole stock: rows absent become 0")


class OffersBody(BaseModel):
    offers: list[Any] = Field(max_length=brands.MAX_ROWS)


class KeyBody(BaseModel):
    name: str = Field(default="key", min_length=1, max_length=64)


class CodeBody(BaseModel):
    store_code: str = Field(min_length=1, max_length=32)
    expires_in_s: int = Field(default=brands.CODE_DEFAULT_S, ge=60, le=brands.CODE_MAX_S)


class ClientBody(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    redirect_uris: list[str] = Field(min_length=1, max_length=5, description="exact URIs: https, http://localhost, "
                                     "or (kind app) a private-use scheme such as com.example.app:/cb")
    kind: str = Field(default="web", pattern="^(web|app)$")


def add_routes(app: FastAPI, store: HubStore, settings) -> None:
    fetcher = ThreadPoolExecutor(max_workers=2, thread_name_prefix="image-fetch")
    app.state.image_fetcher = fetcher

    def brand(request: Request, authorization: str = Header(default="")) -> brands.BrandKey:
        """The calling brand (its key was checked at the gate, before the body was read)."""
        who = request.scope.get("state", {}).get("brand")
        return who if who is not None else brands.authenticate(store, authorization)

    router = APIRouter(prefix="/v1/brand", tags=["brand"], responses=PROBLEMS)

    @router.get("")
    def whoami(who: brands.BrandKey = Depends(brand)) -> dict:
        return brands.brand_info(store, who)

    @router.get("/keys")
    def keys(who: brands.BrandKey = Depends(brand)) -> dict:
        return {"keys": brands.list_keys(store, who.brand_id)}

    @router.post("/keys", status_code=201)
    def create_key(body: KeyBody, who: brands.BrandKey = Depends(brand)) -> dict:
        """A new key of this brand, shown this once (the hub keeps only its hash)."""
        try:
            key_id, key = brands.create_key(store, who.brand_id, inputs.text(body.name, "name", 64))
        except ValueError as exc:
            raise HubFailure(api.P_INVALID, str(exc), 422) from None
        return {"id": key_id, "key": key, "name": body.name}

    @router.delete("/keys/{key_id}", status_code=204)
    def revoke_key(key_id: str, who: brands.BrandKey = Depends(brand)) -> Response:
        brands.revoke_key(store, who.brand_id, key_id)
        return Response(status_code=204)

    queued: dict[str, int] = {}  # image fetches waiting, per brand: one brand cannot starve the others
    import threading
    lock = threading.Lock()

    def fetch_images(brand_id: str, wanted: list[tuple[str, str]]) -> None:
        for gtin, url in wanted:
            with lock:
                if queued.get(brand_id, 0) >= MAX_QUEUED_FETCHES:
                    brands.image_failed(store, brand_id, gtin, "too many images waiting to be fetched; send it again later")
                    continue
                queued[brand_id] = queued.get(brand_id, 0) + 1
            fetcher.submit(fetch_and_count, brand_id, gtin, url)

    def fetch_and_count(brand_id: str, gtin: str, url: str) -> None:
        try:
            _fetch_one(store, brand_id, gtin, url, settings.fetch_private_images)
        finally:
            with lock:
                queued[brand_id] -= 1

    @router.post("/products:batch", response_model=BatchReport, response_model_exclude_none=True)
    def products(body: ProductsBody, who: brands.BrandKey = Depends(brand)) -> dict:
        """Create or change products (GTIN, texts per language, price, image URL fetched once)."""
        answer = brands.upsert_products(store, who.brand_id, body.products)
        fetch_images(who.brand_id, answer.pop("fetch"))
        return answer

    @router.get("/products")
    def list_products(after: str = Query(default="", max_length=14), limit: int = Query(default=500, ge=1, le=5000),
                      who: brands.BrandKey = Depends(brand)) -> dict:
        items, more = brands.list_products(store, who.brand_id, after, limit)
        return {"products": items, "next": more}

    @router.get("/products/{gtin}")
    def get_product(gtin: str, who: brands.BrandKey = Depends(brand)) -> dict:
        return brands.get_product(store, who.brand_id, gtin)

    @router.delete("/products/{gtin}", status_code=204)
    def delete_product(gtin: str, who: brands.BrandKey = Depends(brand)) -> Response:
        brands.delete_product(store, who.brand_id, gtin)
        return Response(status_code=204)

    @router.put("/products/{gtin}/image", status_code=204,
                openapi_extra={"requestBody": {"content": {t: {"schema": {"type": "string", "format": "binary"}}
                                                           for t in IMAGE_TYPES}}})
    async def put_image(gtin: str, request: Request, who: brands.BrandKey = Depends(brand)) -> Response:
        """The product's image (PNG, JPEG or WebP, up to 8 MiB), downscaled to what kiosks show."""
        from starlette.concurrency import run_in_threadpool
        data = await request.body()
        if len(data) > MAX_IMAGE_BYTES:
            raise HubFailure(api.P_INVALID, f"an image may be at most {MAX_IMAGE_BYTES} bytes", 413)
        await run_in_threadpool(brands.get_product, store, who.brand_id, gtin)  # 404 before any decoding
        png = await run_in_threadpool(_prepare, data)
        await run_in_threadpool(brands.set_image, store, who.brand_id, gtin, png)
        return Response(status_code=204)

    @router.post("/stores:batch", response_model=BatchReport, response_model_exclude_none=True)
    def stores(body: StoresBody, who: brands.BrandKey = Depends(brand)) -> dict:
        return brands.upsert_stores(store, who.brand_id, body.stores)

    @router.get("/stores")
    def list_stores(who: brands.BrandKey = Depends(brand)) -> dict:
        return {"stores": brands.list_stores(store, who.brand_id)}

    @router.post("/inventory:batch", response_model=BatchReport, response_model_exclude_none=True)
    async def inventory(request: Request, body: StockBody, who: brands.BrandKey = Depends(brand),
                        idempotency_key: str = Header(default="", max_length=128)) -> Response | dict:
        """Stock rows as a local inventory feed sends them (Google's fields: store_code, id,
        quantity, availability, price, instore_product_location), each with the time it was
        true (`as_of`): an older row never overwrites newer stock. Send an Idempotency-Key:
        the same key and body again replays the first answer and changes nothing."""
        from starlette.concurrency import run_in_threadpool
        inputs.text(idempotency_key, "Idempotency-Key", 128)
        digest = hashlib.sha256(await request.body()).hexdigest() if idempotency_key else ""
        answer = await run_in_threadpool(brands.apply_stock, store, who.brand_id, body.rows, body.snapshot,
                                         idempotency_key, digest)
        if answer.get("replayed"):
            from fastapi.responses import JSONResponse
            return JSONResponse(answer, headers={"Idempotent-Replayed": "true"})
        return answer

    @router.get("/stores/{store_code}/inventory")
    def list_stock(store_code: str, after: str = Query(default="", max_length=14),
                   limit: int = Query(default=1000, ge=1, le=5000), who: brands.BrandKey = Depends(brand)) -> dict:
        items, more = brands.list_stock(store, who.brand_id, store_code, after, limit)
        return {"inventory": items, "next": more}

    @router.post("/offers:batch", response_model=BatchReport, response_model_exclude_none=True)
    def offers(body: OffersBody, who: brands.BrandKey = Depends(brand)) -> dict:
        return brands.upsert_offers(store, who.brand_id, body.offers)

    @router.get("/offers")
    def list_offers(who: brands.BrandKey = Depends(brand)) -> dict:
        return {"offers": brands.list_offers(store, who.brand_id)}

    @router.post("/offers/{offer_id}:end", status_code=204)
    def end_offer(offer_id: str, who: brands.BrandKey = Depends(brand)) -> Response:
        brands.end_offer(store, who.brand_id, offer_id)
        return Response(status_code=204)

    @router.post("/enrollment-codes", status_code=201)
    def create_code(body: CodeBody, who: brands.BrandKey = Depends(brand)) -> dict:
        """A one-time code a technician types into a new kiosk of this store (shown once)."""
        return brands.create_code(store, who.brand_id, body.store_code, body.expires_in_s)

    @router.get("/enrollment-codes")
    def list_codes(who: brands.BrandKey = Depends(brand)) -> dict:
        return {"codes": brands.list_codes(store, who.brand_id)}

    @router.delete("/enrollment-codes/{code_id}", status_code=204)
    def revoke_code(code_id: str, who: brands.BrandKey = Depends(brand)) -> Response:
        brands.revoke_code(store, who.brand_id, code_id)
        return Response(status_code=204)

    @router.get("/devices")
    def devices(who: brands.BrandKey = Depends(brand)) -> dict:
        """The brand's kiosks with their last heartbeat; online when seen in the last 5 minutes."""
        return {"devices": brands.list_devices(store, who.brand_id)}

    @router.post("/devices/{device_id}:revoke", status_code=204)
    def revoke_device(device_id: str, who: brands.BrandKey = Depends(brand)) -> Response:
        brands.revoke_device(store, who.brand_id, device_id)
        return Response(status_code=204)

    @router.post("/clients", status_code=201)
    def create_client(body: ClientBody, who: brands.BrandKey = Depends(brand)) -> dict:
        """Register the brand's web shop or app as an OAuth client (public: no secret)."""
        from hub import oauth
        try:
            return oauth.register_client(store, who.brand_id, body.name, body.redirect_uris, body.kind)
        except ValueError as exc:
            raise HubFailure(api.P_INVALID, str(exc), 422) from None

    @router.get("/clients")
    def list_clients(who: brands.BrandKey = Depends(brand)) -> dict:
        from hub import oauth
        return {"clients": oauth.clients_of(store, who.brand_id)}

    @router.delete("/clients/{client_id}", status_code=204)
    def revoke_client(client_id: str, who: brands.BrandKey = Depends(brand)) -> Response:
        """The client's tokens are refused from their next call."""
        from hub import oauth
        oauth.revoke_client(store, who.brand_id, client_id)
        return Response(status_code=204)

    app.include_router(router)


def _prepare(data: bytes) -> bytes:
    from hub import images
    try:
        return images.prepare(data)
    except ValueError as exc:
        raise HubFailure(api.P_INVALID, f"the image was refused: {exc}", 422) from None


def _fetch_one(store: HubStore, brand_id: str, gtin: str, url: str, allow_private: bool) -> None:
    """Fetch a product's image_url once (in the background); its state says how it went."""
    from hub import images
    try:
        brands.set_image(store, brand_id, gtin, images.prepare(images.fetch(url, allow_private=allow_private)), "fetched")
    except ValueError as exc:
        log.info("image for a product of %s refused: %s", brand_id, str(exc)[:200])
        brands.image_failed(store, brand_id, gtin, str(exc))
    except Exception:  # noqa: BLE001 - a fetch never takes the hub down; the state says it failed
        log.exception("image fetch failed")
        brands.image_failed(store, brand_id, gtin, "the fetch failed")
