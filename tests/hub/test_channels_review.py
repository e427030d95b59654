"""Review of issue 12 (web shops and apps, hub/oauth.py, hub/oauth_web.py, hub/channel_api.py,
hub/shelf.py): each test is one defect found in review and FAILS until it is fixed. The
docstring of each says what is wrong and the suggested fix. Helpers and fixtures are those of
tests/hub/test_oauth.py, tests/hub/test_channel_api.py and tests/hub/test_shopper_attacks.py
(the `hub` fixture: the real hub on a loopback port, SQLite and PostgreSQL)."""
from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_shopper_attacks import EMMA, claim, hub, one, shopper_id  # noqa: E402,F401
from test_oauth import (  # noqa: E402
    access, authorize_url, consent_form, count, decide, error_of, new_client, pkce, redirected, refresh, refused,
    signed_in, tokens)
import test_channel_api as ch  # noqa: E402

from hub import oauth, shelf, shopper  # noqa: E402,F401

OTHERS = "wishlist wishlist.other_brands"


def rows_of(hub, table: str, sid: str) -> int:
    return one(hub, f"SELECT COUNT(*) FROM {table} WHERE shopper_id=?", (sid,))


# -- erase and export ------------------------------------------------------------------------
def test_erase_deletes_the_shoppers_oauth_grants_tokens_and_codes(hub, signed_in):
    """Defect (privacy, high): hub/shopper.py ERASE_SQL (about line 590) deletes shelf_watches but
    not oauth_grants, oauth_tokens or oauth_codes. After "erase me" the hub still holds, per
    shopper id, which brands' web shops and apps the shopper used, with what scopes and when
    (created_at/updated_at/issued_at), plus live-looking token hashes; only the `erased=1` join in
    oauth.authenticate keeps them from working. Erase must leave no such trace.
    Fix: add "DELETE FROM oauth_codes WHERE shopper_id=?", "DELETE FROM oauth_tokens WHERE
    shopper_id=?", "DELETE FROM oauth_grants WHERE shopper_id=?" to ERASE_SQL (same transaction)."""
    client_id = new_client(hub)
    tokens(hub, signed_in, client_id)
    _, challenge = pkce()  # and one code not exchanged yet
    form = consent_form(signed_in, hub, authorize_url(client_id, challenge))
    redirected(decide(signed_in, hub, form))
    sid = shopper_id(EMMA)
    assert rows_of(hub, "oauth_grants", sid) and rows_of(hub, "oauth_tokens", sid) and rows_of(hub, "oauth_codes", sid)
    shopper.erase(hub.store, sid)
    left = {t: rows_of(hub, t, sid) for t in ("oauth_grants", "oauth_tokens", "oauth_codes")}
    assert left == {"oauth_grants": 0, "oauth_tokens": 0, "oauth_codes": 0}, left


def test_export_lists_the_web_shops_and_apps_the_shopper_allowed(hub, signed_in):
    """Defect (privacy / GDPR art. 15, medium): hub/shopper.py export() (about line 521) gained
    `shelf_watches` but not the shopper's OAuth grants, though they are data held about the
    shopper ("Web shops and apps" on the Sharing page: which client of which brand may do what,
    since when, last used). docs/shopper-export.md and the schema do not mention them either.
    Fix: add e.g. "apps": [{client_name, kind, brand_id, brand_name, scopes, created_at,
    updated_at, last_used_at, revoked_at}] from oauth_grants (live and revoked), never a hash;
    document it and add it to docs/shopper-export.schema.json."""
    client_id = new_client(hub)
    tokens(hub, signed_in, client_id, scopes=("wishlist", "scans"))
    exported = json.dumps(shopper.export(hub.store, shopper_id(EMMA)))
    assert "lotus shop" in exported, "the grant to 'lotus shop' is missing from the export"


def test_refreshing_for_an_erased_shopper_is_invalid_grant(hub, signed_in):
    """Defect (OAuth error code, low): after the shopper is erased, a refresh with a still-stored
    refresh token reaches Authlib's RefreshTokenGrant.create_token_response, whose
    authenticate_user (oauth.RefreshGrant.authenticate_user -> _grant_owner) is None, and Authlib
    answers `invalid_request` ("There is no 'user' for this token"). RFC 6749 §5.2: a refresh
    token that is invalid or revoked is `invalid_grant`; clients treat invalid_request as their
    own bug and may retry instead of signing the shopper out.
    Fix: in RefreshGrant.authenticate_refresh_token also join shoppers (s.erased = 0) and return
    None otherwise (or revoke the tokens at erase, see the erase test)."""
    client_id = new_client(hub)
    t = tokens(hub, signed_in, client_id)
    shopper.erase(hub.store, shopper_id(EMMA))
    assert error_of(refresh(hub, client_id, t["refresh_token"])) == "invalid_grant"


# -- one ledger, three doors ------------------------------------------------------------------
def test_consent_screen_shows_the_ledgers_refusal_not_a_pre_ticked_box(hub, signed_in):
    """Defect (consent / one ledger, medium): hub/templates/oauth_consent.html renders every scope
    checkbox `checked`, including `wishlist.other_brands`, whatever the ledger says. A shopper
    who said "no" to sharing with lotus at a kiosk or on the Sharing page is shown that very
    choice already ticked, and one click on "Allow" silently turns the kiosk's and the page's
    "no" into "yes" (oauth.consent -> set_sharing). The consent screen is not showing the same
    ledger as the other two doors, and a pre-ticked box is not valid consent (GDPR recital 32,
    CJEU Planet49).
    Fix: pass the shopper's current sharing state for client.brand_id to the template
    (shopper.sharing ledger: '*' -> brand and per-brand rows, as the kiosk reads it) and tick
    the other_brands box only when the ledger says granted (never when refused or undecided);
    say the current state next to it."""
    sid = shopper_id(EMMA)
    shopper.set_sharing(hub.store, sid, "lotus", False, via="page", require_met=False)  # "no" on the page
    client_id = new_client(hub)
    _, challenge = pkce()
    page = consent_form(signed_in, hub, authorize_url(client_id, challenge, scope=OTHERS))["_page"]
    assert 'id="scope-wishlist.other_brands" checked' not in page, \
        "the refused sharing choice is offered pre-ticked on the consent screen"


def test_sharing_page_stops_listing_other_brands_for_a_grant_once_the_ledger_says_no(hub, signed_in):
    """Defect (one ledger, three doors, low/medium): oauth.grants_of (hub/oauth.py:476) lists a
    grant's scopes from oauth_grants.scope only. After the shopper stops sharing with the brand
    on the Sharing page (or at a kiosk), the same page's "Web shops and apps" card still says the
    shop may "See the items you saved at other brands", while the channel API (rightly) no
    longer shows them: two doors contradict each other on one page.
    Fix: in grants_of drop (or mark "stopped on your Sharing page") wishlist.other_brands when
    the ledger for (shopper, brand) is not granted; or have set_sharing(allow=False) narrow the
    live grants of that brand's clients (UPDATE oauth_grants SET scope = scope minus
    wishlist.other_brands)."""
    client_id = new_client(hub)
    tokens(hub, signed_in, client_id, scopes=("wishlist", "wishlist.other_brands"))
    sid = shopper_id(EMMA)
    assert "wishlist.other_brands" in oauth.grants_of(hub.store, sid)[0]["scopes"]
    shopper.set_sharing(hub.store, sid, "lotus", False, via="page")  # the page's own switch
    assert "wishlist.other_brands" not in oauth.grants_of(hub.store, sid)[0]["scopes"], \
        "the Sharing page still says lotus's shop may see other brands' items after 'stop sharing'"


# -- revocation --------------------------------------------------------------------------------
def test_revoking_the_refresh_token_ends_the_access_tokens_of_earlier_rotations(hub, signed_in):
    """Defect (RFC 7009 §2.1, low/medium): oauth.Revocation.revoke_token (hub/oauth.py:346) revokes
    only the one oauth_tokens row. A refresh rotates into a new row and leaves the previous
    row's access token live (RefreshGrant.revoke_old_credential sets only rotated_at). So a
    shop's sign-out (the demo shop revokes its refresh token) leaves the access token from
    before the last refresh working for up to 10 minutes. RFC 7009: revoking a refresh token
    SHOULD also invalidate the access tokens of the same grant.
    Fix: when the revoked token is a refresh token (or always), revoke every token row of its
    grant (UPDATE oauth_tokens SET revoked_at=? WHERE grant_id=?); and/or revoke the old
    row's access token in revoke_old_credential."""
    client_id = new_client(hub)
    first = tokens(hub, signed_in, client_id)
    second = refresh(hub, client_id, first["refresh_token"]).json()
    r = requests.post(hub.base + "/oauth/revoke", timeout=20,
                      data={"token": second["refresh_token"], "token_type_hint": "refresh_token",
                            "client_id": client_id})
    assert r.status_code == 200
    refused(hub, second["access_token"])
    refused(hub, first["access_token"])  # the access token of the earlier rotation still works today


# -- races on PostgreSQL -----------------------------------------------------------------------
def test_two_consents_at_once_for_a_new_grant_are_not_a_500(hub, signed_in):
    """Defect (race, low/medium, PostgreSQL): oauth._live_grant (hub/oauth.py:395) reads "the live
    grant of (shopper, client)" and inserts one if none, in a READ COMMITTED transaction. Two
    consent posts at once (a double click on "Allow", two tabs) both find none and both insert;
    the unique partial index oauth_grants_live makes the second an IntegrityError, and the
    consent page answers 500 "Something went wrong" instead of a code. (SQLite's BEGIN
    IMMEDIATE serialises it, so this shows on PostgreSQL.)
    Fix: INSERT ... ON CONFLICT (shopper_id, client_id) WHERE revoked_at IS NULL DO UPDATE SET
    scope=excluded.scope, updated_at=excluded.updated_at RETURNING id; or lock the shopper's row
    (SELECT ... FOR UPDATE, as channel_api._lock_shopper does) before the SELECT."""
    for _ in range(4):
        client_id = new_client(hub)
        _, challenge = pkce()
        forms = [consent_form(signed_in, hub, authorize_url(client_id, challenge, state=f"s{i}")) for i in range(6)]
        start, answers = threading.Barrier(len(forms)), []

        def go(form):
            s = requests.Session()
            s.cookies.update(signed_in.cookies)
            start.wait()
            answers.append(decide(s, hub, form).status_code)

        threads = [threading.Thread(target=go, args=(f,)) for f in forms]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == [303] * len(forms), answers
        assert len(oauth.grants_of(hub.store, shopper_id(EMMA))) >= 1


# -- shelf watches -------------------------------------------------------------------------------
def test_a_watch_ends_when_its_item_leaves_the_wishlist(hub):
    """Defect (shelf watches, low): hub/shelf.py says "a watch names a live wishlist item", and
    add_watch checks it, but nothing removes the watch when the item is removed (channel remove,
    kiosk remove, page remove), and watches_of (the page, GET /v1/channel/shelf-watches) does
    not check the wishlist. The page and the shop keep announcing "on the shelf" for an item the
    shopper took off the list, and re-saving the item months later silently revives the old
    watch at the kiosk.
    Fix: in watches_of/watch_choices and profile.py's watched query, join the live adds (LIVE);
    or delete the shopper's watches of a gtin when its last live add is removed (events.py's
    remove and channel_api.remove_items, in the same transaction)."""
    tok = ch.token(hub)
    gtin = ch.fresh(hub)
    added = ch.call(hub, "post", "/wishlist/items", tok, json={"event_id": ch.new_id(), "gtin": gtin})
    assert added.status_code == 201
    assert ch.call(hub, "post", "/shelf-watches", tok, json={"gtin": gtin, "store_code": "hcm"}).status_code == 201
    r = ch.call(hub, "post", "/wishlist/remove", tok, json={"event_id": ch.new_id(), "tags": [added.json()["tag"]]})
    assert r.status_code == 200 and r.json()["removed"] == 1
    assert gtin not in {g for _, g in ch.live(hub)}
    listed = ch.call(hub, "get", "/shelf-watches", tok).json()["watches"]
    assert [w for w in listed if w["gtin"] == gtin] == [], "a watch of an item no longer on the wishlist is listed"
    assert [w for w in shelf.watches_of(hub.store, ch.LAN) if w["gtin"] == gtin] == []
