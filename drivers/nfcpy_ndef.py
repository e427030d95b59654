"""The NDEF framing check of the nfcpy backend: is a message read off a tag well framed?

    if reason := framing_problem(message):
        raise Malformed(reason)

It walks the record headers (MB/ME flags, short-record and ID-length flags, the type,
payload and ID lengths) and says what is wrong, or None. It checks framing only, never
content: what a record means is the service's business. A pure function of bytes: it
imports neither nfcpy nor anything else, never logs, and never raises on hostile input.
"""
from __future__ import annotations


def framing_problem(message: bytes) -> str | None:
    """Check the NDEF record framing (flags and lengths), not the content."""
    i, first = 0, True
    while i < len(message):
        header = message[i]
        if bool(header & 0x80) != first:
            return "NDEF message-begin flag misplaced"
        short, has_id = header & 0x10, header & 0x08
        fixed = 2 + (1 if short else 4) + (1 if has_id else 0)
        if i + fixed > len(message):
            return "NDEF record header runs past the end of the message"
        type_len = message[i + 1]
        payload_len = message[i + 2] if short else int.from_bytes(message[i + 2:i + 6], "big")
        id_len = message[i + fixed - 1] if has_id else 0
        i += fixed + type_len + payload_len + id_len
        if i > len(message):
            return "NDEF record runs past the end of the message"
        if header & 0x40:
            return None if i == len(message) else "data after the NDEF message-end record"
        first = False
    return None if first else "NDEF message has no end record"
