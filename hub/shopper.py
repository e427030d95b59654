"""The shopper's own page, the service side: claiming a card, passkeys, the profile as the
shopper sees it, sharing choices, who saw the data, export and erase, cards and phones.

    state, shopper_id = shopper.card_state(store, token)
    shopper_id = shopper.claim(store, token, passkey, "vi")
    page = shopper.profile(store, shopper_id, "vi")

The rules:

- Holding a card is never enough to see anything: a card's token only tells its state (new,
  unclaimed, claimed, revoked). The first passkey claims the card; from then on only a
  passkey signs in. Two claims racing for one card: one wins, the other is a 409.
- Check-ins of a card no profile owns (guest visits) are kept GUEST_VISIT_DAYS and counted
  as visits of the profile that claims the card.
- Sharing is per brand: whether brand B may see the items saved at other brands ("*" -> B),
  and whether B's staff may find the shopper by name. Each choice keeps when and where
  (kiosk, page, web, app) it was made. A refusal is published to the revocation feed for B
  in the same transaction, so B's kiosks purge their cached view at their next sync.
- The access log ("who saw my data") is the shopper's, apart from the operator's logs: every
  check-in, staff lookup and staff search hit, kept ACCESS_RETENTION_DAYS.
- Erase keeps no personal data: the shopper row stays as a tombstone (erased=1, no name),
  events stay with the shopper's id removed (counts per store stay true), every card and
  phone key is revoked, and every kiosk is told to forget the shopper.
- Names of cards and phones are 1-40 plain characters. Nothing here logs a name, a token or
  a wishlist; ids only.
Refusals are HubFailure: 404 for what is not this shopper's, 409 for conflicts, 422 for bad input.

Every name of the service is importable from here; each part has its own module:

    hub/shopper_account.py   a live shopper, the refusals, events detached from a shopper
    hub/shopper_claim.py     a card's state, the claim, guest visits, passkeys
    hub/shopper_profile.py   the profile, wishlist, scans, brands met, cards and phones
    hub/shopper_choices.py   sharing and staff-search choices, removes, naming and revoking
    hub/shopper_data.py      the access log, the export and the CSV, erase
"""
from __future__ import annotations

from hub.shopper_account import DAY_S, P_CONFLICT, STRIPPED, conflict, invalid, not_yours  # noqa: F401  (re-exported)
from hub.shopper_choices import (  # noqa: F401  (re-exported)
    MAX_TAGS, NAME_MAX, VIAS, add_phone, card_name, remove_items, rename_card, rename_phone, revoke_card, revoke_phone,
    set_sharing, set_staff_search,
)
from hub.shopper_claim import (  # noqa: F401  (re-exported)
    CLAIM_NEW, CLAIMED, GUEST_SQL, GUEST_VISIT_DAYS, LOCALE_RE, REVOKED, STATE_SQL, UNCLAIMED, add_passkey, card_state,
    claim, guest_row, passkey_for_sign_in, passkey_used, passkeys, record_guest_visit, remove_passkey,
    sweep_guest_visits, webauthn_user,
)
from hub.shopper_data import (  # noqa: F401  (re-exported)
    ACCESS_RETENTION_DAYS, ACCESS_SQL, CSV_HEADER, CSV_RISKY, ERASE_SQL, SCHEMA_VERSION, WHATS, WHY_CHECKIN, WHY_LOOKUP,
    WHY_SEARCH, access_log, csv_cell, erase, export, record_access, record_access_statement, sweep_access_log,
    wishlist_csv,
)
from hub.shopper_profile import ADDS_SQL, LIVE_ADDS, NEARBY, SCAN_DAYS, cards, phones, profile  # noqa: F401  (re-exported)
