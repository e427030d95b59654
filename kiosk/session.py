"""One shopper's visit at the kiosk, and how queued events show on top of a view.

The screen shows the hub's (or the cache's) view with this kiosk's unacknowledged events
applied: adds appear at once (marked pending), removes take away exactly the add tags they
name, the same observed-remove rule the hub applies, so the screen never disagrees with
what the hub will end up with.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from kiosk import api


@dataclass
class Session:
    # the proof every event of the visit carries (the hub attributes nothing without one):
    # online {"checkin": id sent with the check-in, "session": hub session, "shopper_id": ...};
    # offline {"checkin": id of the queued CHECKIN event, "shopper_id": cached id (absent for a guest)}
    ref: dict
    key: str  # HMAC of the card's id under this kiosk's cache key ("" when the card has no stable identity)
    view: api.ShopperView
    guest: bool = False


def apply_pending(view: api.ShopperView, events: list[dict],
                  inventory: Callable[[str], dict | None]) -> api.ShopperView:
    items = {i.gtin: i for i in view.wishlist}
    order = [i.gtin for i in view.wishlist]
    for event in events:
        gtin = event.get("gtin", "")
        if event.get("type") == api.WISHLIST_ADD and gtin:
            current = items.get(gtin)
            if current is not None:
                if event["event_id"] not in current.tags:
                    items[gtin] = replace(current, tags=current.tags + (event["event_id"],))
                continue
            stock = inventory(gtin) or {}
            items[gtin] = api.WishlistItem(
                gtin=gtin, title=stock.get("title", ""), brand=stock.get("brand", ""),
                brand_name=stock.get("brand_name", ""), price=stock.get("price", ""),
                currency=stock.get("currency", ""),
                available_here=int(stock.get("quantity", 0)),
                location=stock.get("location", "") if stock.get("quantity") else "",
                image=f"/v1/images/{gtin}.png", tags=(event["event_id"],), pending=True,
                description=stock.get("description", ""), texts=tuple(stock.get("texts", ())))
            order.insert(0, gtin)
        elif event.get("type") == api.WISHLIST_REMOVE and gtin in items:
            seen = set(event.get("tags", ()))
            left = tuple(t for t in items[gtin].tags if t not in seen)
            if left:
                items[gtin] = replace(items[gtin], tags=left)
            else:
                del items[gtin]
                order.remove(gtin)
    return replace(view, wishlist=tuple(items[g] for g in order))
