"""Demo taps as a reader reports them: a shopper card, a product tag, any URI. Kept light
(no web framework): the kill -9 worker imports it in a process that is killed within a second."""
import ndef

from drivers.base import TYPE2, TagRead
from hub import demo


def uri_read(uri: str) -> TagRead:
    return TagRead("simulated", TYPE2, uid=bytes.fromhex("04aabbccddeeff"),
                   ndef=b"".join(ndef.message_encoder([ndef.UriRecord(uri)])))


def card(index: int) -> TagRead:
    return uri_read(demo.shopper_uri(demo.token_for(index), demo.ID_HOST))


def product(n: int) -> tuple[str, TagRead]:
    p = demo.products()[n]
    return p["gtin"], uri_read(f"https://id.gs1.org/01/{p['gtin']}")
