"""Passkeys (WebAuthn) for the shopper's page, on py_webauthn: claiming a card, signing in
from any device, adding another passkey.

    ceremony, options = passkeys.begin(store, rp, passkeys.CLAIM, subject=card_hash)
    verified = passkeys.finish_registration(store, rp, passkeys.CLAIM, card_hash, ceremony, answer)

The relying party (its id and the one origin answers must come from) is the hub's configured
public URL (`--public-url`, KIOSK_HUB_PUBLIC_URL), never the request's Host header: a page
proxied through another site gets answers signed for that site's origin, and those are
refused. Every ceremony's challenge (32 random bytes, py_webauthn's default) is kept in the
database (any hub process may finish it), under the SHA-256 of a random ceremony id, bound to
its purpose and subject (the card being claimed, the shopper adding a passkey), for
CEREMONY_S, and taken exactly once (DELETE ... RETURNING): a replayed answer finds no
challenge. User verification is required (a passkey is "something you have" plus a PIN or a
fingerprint). A sign-in's signature counter must move forward when the authenticator keeps
one (py_webauthn refuses a counter that did not: a cloned authenticator).
"""
from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from webauthn import (generate_authentication_options, generate_registration_options, options_to_json,
                      verify_authentication_response, verify_registration_response)
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (AuthenticatorSelectionCriteria, PublicKeyCredentialDescriptor,
                                      ResidentKeyRequirement, UserVerificationRequirement)

from hub.store import HubStore

log = logging.getLogger(__name__)
CLAIM, SIGN_IN, ADD = "claim", "sign_in", "add_passkey"
CEREMONY_S = 300
TIMEOUT_MS = 120_000
MAX_ANSWER_BYTES = 16 * 1024
RP_NAME = "NFC kiosk — my profile"


class PasskeyRefused(Exception):
    """An answer that does not prove what it should (forged, replayed, expired, another site's)."""


@dataclass(frozen=True)
class RelyingParty:
    id: str  # a domain: "localhost", "id.shop.example"
    origin: str  # "https://id.shop.example", "http://localhost:8080"

    @classmethod
    def from_url(cls, public_url: str) -> "RelyingParty":
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the hub's public URL must be http(s)://host[:port], not {public_url!r}")
        if parts.scheme == "http" and parts.hostname != "localhost":
            raise ValueError("passkeys need https (plain http only for localhost)")
        port = f":{parts.port}" if parts.port else ""
        return cls(id=parts.hostname, origin=f"{parts.scheme}://{parts.hostname}{port}")


def _hash(ceremony: str) -> str:
    return hashlib.sha256(ceremony.encode("ascii", "replace")).hexdigest()


def _keep(store: HubStore, purpose: str, subject: str, challenge: bytes) -> str:
    ceremony, now = secrets.token_urlsafe(24), time.time()
    if secrets.randbelow(20) == 0:
        store.conn.execute("DELETE FROM webauthn_challenges WHERE expires_at < ?", (now,))
    store.conn.execute("INSERT INTO webauthn_challenges(id_hash, purpose, subject, challenge, expires_at) "
                       "VALUES (?,?,?,?,?)", (_hash(ceremony), purpose, subject, bytes_to_base64url(challenge),
                                              now + CEREMONY_S))
    return ceremony


def _take(store: HubStore, purpose: str, subject: str, ceremony) -> bytes:
    """The ceremony's challenge, once: it is deleted whether or not the answer verifies."""
    from webauthn.helpers import base64url_to_bytes
    if not isinstance(ceremony, str) or not 20 <= len(ceremony) <= 64:
        raise PasskeyRefused("no such ceremony")
    row = store.conn.execute("DELETE FROM webauthn_challenges WHERE id_hash=? RETURNING purpose, subject, challenge, "
                             "expires_at", (_hash(ceremony),)).fetchone()
    if row is None:
        raise PasskeyRefused("this passkey request was already used or never made")
    if row[0] != purpose or row[1] != subject:
        raise PasskeyRefused("this passkey request was made for something else")
    if row[3] < time.time():
        raise PasskeyRefused("this passkey request has expired")
    return base64url_to_bytes(row[2])


def _answer(answer) -> dict:
    if not isinstance(answer, dict) or len(json.dumps(answer)) > MAX_ANSWER_BYTES:
        raise PasskeyRefused("the passkey answer is malformed")
    return answer


def registration_options(store: HubStore, rp: RelyingParty, purpose: str, subject: str, user_id: bytes,
                         user_name: str, exclude: list[str] = ()) -> tuple[str, dict]:
    """(ceremony id, the options for navigator.credentials.create as JSON-ready dict)."""
    from webauthn.helpers import base64url_to_bytes
    options = generate_registration_options(
        rp_id=rp.id, rp_name=RP_NAME, user_id=user_id, user_name=user_name, user_display_name=user_name,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(resident_key=ResidentKeyRequirement.REQUIRED,
                                                               user_verification=UserVerificationRequirement.REQUIRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in exclude])
    return _keep(store, purpose, subject, options.challenge), json.loads(options_to_json(options))


def finish_registration(store: HubStore, rp: RelyingParty, purpose: str, subject: str, ceremony, answer) -> dict:
    """The new passkey ({"id", "public_key", "sign_count", "transports"}) or PasskeyRefused."""
    challenge = _take(store, purpose, subject, ceremony)
    answer = _answer(answer)
    try:
        verified = verify_registration_response(credential=answer, expected_challenge=challenge,
                                                expected_rp_id=rp.id, expected_origin=rp.origin,
                                                require_user_verification=True)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        log.info("a passkey registration was refused: %s", type(exc).__name__)
        raise PasskeyRefused("the passkey answer does not verify") from None
    transports = answer.get("response", {}).get("transports") if isinstance(answer.get("response"), dict) else []
    transports = [t for t in transports or [] if isinstance(t, str) and len(t) <= 16][:6]
    return {"id": bytes_to_base64url(verified.credential_id), "public_key": verified.credential_public_key,
            "sign_count": verified.sign_count, "transports": transports}


def authentication_options(store: HubStore, rp: RelyingParty) -> tuple[str, dict]:
    """Sign-in with a discoverable passkey: no credential is named (nothing to enumerate)."""
    options = generate_authentication_options(rp_id=rp.id, timeout=TIMEOUT_MS,
                                              user_verification=UserVerificationRequirement.REQUIRED)
    return _keep(store, SIGN_IN, "", options.challenge), json.loads(options_to_json(options))


def answer_credential_id(answer) -> str:
    answer = _answer(answer)
    credential_id = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(credential_id, str) or not 1 <= len(credential_id) <= 1400:
        raise PasskeyRefused("the passkey answer is malformed")
    return credential_id


def finish_authentication(store: HubStore, rp: RelyingParty, ceremony, answer, passkey: dict | None,
                          user_handle: bytes | None) -> int:
    """Verify a sign-in answer against the stored passkey; returns the new signature counter.
    `passkey` None (unknown credential) is refused after the challenge is consumed, like a
    forged answer: the one same refusal."""
    challenge = _take(store, SIGN_IN, "", ceremony)
    answer = _answer(answer)
    if passkey is None:
        raise PasskeyRefused("the passkey answer does not verify")
    handle = (answer.get("response") or {}).get("userHandle") if isinstance(answer.get("response"), dict) else None
    if handle and user_handle is not None:
        from webauthn.helpers import base64url_to_bytes
        try:
            if base64url_to_bytes(handle) != user_handle:
                raise PasskeyRefused("the passkey answer does not verify")
        except (ValueError, TypeError):
            raise PasskeyRefused("the passkey answer is malformed") from None
    try:
        verified = verify_authentication_response(
            credential=answer, expected_challenge=challenge, expected_rp_id=rp.id, expected_origin=rp.origin,
            credential_public_key=bytes(passkey["public_key"]), credential_current_sign_count=int(passkey["sign_count"]),
            require_user_verification=True)
    except (WebAuthnException, ValueError, TypeError, KeyError) as exc:
        log.info("a passkey sign-in was refused: %s", type(exc).__name__)
        raise PasskeyRefused("the passkey answer does not verify") from None
    return verified.new_sign_count
