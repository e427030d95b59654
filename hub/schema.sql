-- The reference hub's schema (SQLite; portable SQL so PostgreSQL can follow).
CREATE TABLE IF NOT EXISTS brands (id TEXT PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stores (
    id TEXT PRIMARY KEY, brand_id TEXT NOT NULL REFERENCES brands(id), name TEXT NOT NULL,
    city TEXT NOT NULL DEFAULT '', currency TEXT NOT NULL DEFAULT 'USD');
CREATE TABLE IF NOT EXISTS products (
    gtin TEXT PRIMARY KEY, brand_id TEXT NOT NULL REFERENCES brands(id), title TEXT NOT NULL,
    price TEXT NOT NULL, currency TEXT NOT NULL, online INTEGER NOT NULL DEFAULT 1);
CREATE TABLE IF NOT EXISTS images (gtin TEXT PRIMARY KEY, png BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS inventory (
    store_id TEXT NOT NULL, gtin TEXT NOT NULL, quantity INTEGER NOT NULL, location TEXT NOT NULL DEFAULT '',
    version INTEGER NOT NULL, PRIMARY KEY (store_id, gtin));
CREATE INDEX IF NOT EXISTS inventory_version ON inventory(store_id, version);
CREATE TABLE IF NOT EXISTS offers (
    id TEXT PRIMARY KEY, brand_id TEXT NOT NULL, store_id TEXT, title TEXT NOT NULL,
    kind TEXT NOT NULL, gtin TEXT NOT NULL DEFAULT '', discount_pct INTEGER NOT NULL DEFAULT 0,
    valid_until TEXT NOT NULL DEFAULT '', deleted INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS shoppers (
    id TEXT PRIMARY KEY, display_name TEXT NOT NULL, locale TEXT NOT NULL DEFAULT 'en',
    role TEXT NOT NULL DEFAULT 'shopper', allow_staff_search INTEGER NOT NULL DEFAULT 0,
    pin_hash TEXT NOT NULL DEFAULT '', erased INTEGER NOT NULL DEFAULT 0);
-- token and UID credentials, by keyed hash of "<kind>:<value>" (the raw value is never stored)
CREATE TABLE IF NOT EXISTS credentials (
    hash TEXT PRIMARY KEY, shopper_id TEXT NOT NULL REFERENCES shoppers(id), kind TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS phone_keys (
    credential_id TEXT PRIMARY KEY, shopper_id TEXT NOT NULL REFERENCES shoppers(id), public_key BLOB NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS hce_nonces (nonce TEXT PRIMARY KEY, seen_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS sun_cards (
    uid TEXT PRIMARY KEY, shopper_id TEXT NOT NULL REFERENCES shoppers(id), file_key TEXT NOT NULL,
    last_counter INTEGER NOT NULL DEFAULT -1);
CREATE TABLE IF NOT EXISTS consents (
    shopper_id TEXT NOT NULL, from_brand TEXT NOT NULL, to_brand TEXT NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (shopper_id, from_brand, to_brand));
CREATE TABLE IF NOT EXISTS visits (
    shopper_id TEXT NOT NULL, brand_id TEXT NOT NULL, count INTEGER NOT NULL, last_at REAL NOT NULL,
    PRIMARY KEY (shopper_id, brand_id));
-- the wishlist is an observed-remove set: every add is a tag (its event id)...
CREATE TABLE IF NOT EXISTS wishlist_adds (
    tag TEXT PRIMARY KEY, shopper_id TEXT NOT NULL, gtin TEXT NOT NULL, received_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS wishlist_adds_shopper ON wishlist_adds(shopper_id);
-- ...and a remove takes away exactly the add tags it had seen.
CREATE TABLE IF NOT EXISTS wishlist_removed (tag TEXT PRIMARY KEY, shopper_id TEXT NOT NULL);
-- Idempotent receipt: the UNIQUE key on event_id decides, not application code. Never expires.
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, type TEXT NOT NULL, body_hash TEXT NOT NULL,
    shopper_id TEXT, received_at REAL NOT NULL, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE, brand_id TEXT NOT NULL,
    store_id TEXT NOT NULL, enrolled_at REAL NOT NULL, heartbeat TEXT NOT NULL DEFAULT '{}',
    last_seen REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS enrollment_codes (
    code TEXT PRIMARY KEY, brand_id TEXT NOT NULL, store_id TEXT NOT NULL, reusable INTEGER NOT NULL DEFAULT 0,
    used_by TEXT);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- short-lived check-in sessions: let the kiosk that checked a shopper in refresh their view
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, device_id TEXT NOT NULL, shopper_id TEXT NOT NULL, expires_at REAL NOT NULL);
-- staff mode (kiosk/hub/staff.py): wrong-PIN counts and lockouts per staff member, the
-- unlocked staff mode of each device, and the staff-search directory (full names, with a
-- case- and accent-folded key; only shoppers who allowed staff search are ever returned)
CREATE TABLE IF NOT EXISTS staff_pin_failures (
    staff_id TEXT PRIMARY KEY, failures INTEGER NOT NULL, locked_until REAL NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS staff_sessions (
    device_id TEXT PRIMARY KEY, staff_id TEXT NOT NULL, role TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS staff_directory (
    shopper_id TEXT PRIMARY KEY, full_name TEXT NOT NULL, search_key TEXT NOT NULL);
