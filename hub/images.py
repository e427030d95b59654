"""Product images: untrusted bytes in, one small clean PNG out; and fetching an image URL
a brand gave without letting it point the hub at itself.

    png = images.prepare(uploaded_bytes)                   # ValueError("reason") for bad input
    png = images.prepare(images.fetch("https://cdn.example/p.jpg"))

`prepare` accepts PNG, JPEG and WebP, told apart by their first bytes (never by a file name or
a Content-Type a caller claims). It refuses more than MAX_INPUT_BYTES of input and more than
MAX_PIXELS pixels before decoding (a decompression bomb is a small file declaring a huge
image), decodes only the first frame of an animation, applies the EXIF orientation, and
scales the picture to fit inside SIZE x SIZE (what kiosks show), keeping its aspect ratio:
not padded (the kiosk centres it), never enlarged. The result is a fresh PNG with no
metadata (no EXIF, no GPS, no text chunks): RGB when fully opaque, RGBA otherwise.

`fetch` is for `image_url`: https only (plain http only with allow_private, for tests and an
on-site image server); the host is resolved once and every address it resolves to must be
public (no loopback, private, link-local such as 169.254.169.254, shared, multicast or
reserved address), and the connection goes to the address that was checked, so a DNS
answer that changes between the check and the connect (rebinding) changes nothing. A
redirect is followed at most MAX_REDIRECTS times, each hop checked again from the start.
The body is streamed and dropped past `max_bytes`; the whole fetch, every hop included,
has one deadline. Compressed transfer encodings are refused (a gzip bomb is still a bomb).
"""
from __future__ import annotations

import io
import ipaddress
import socket
import time
import warnings

MAX_INPUT_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 40_000_000  # 40 MP: a large camera photo; more is refused before it is decoded
SIZE = 256  # kiosks show product images in a 256 x 256 box
MAX_REDIRECTS = 3
CHUNK = 64 * 1024
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def sniff(data: bytes) -> str | None:
    """The image format by its magic bytes: "PNG", "JPEG", "WEBP", or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def prepare(data: bytes) -> bytes:
    """`data` (an uploaded or fetched file) as the PNG kiosks are served; ValueError("reason")."""
    from PIL import Image, ImageOps

    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError("an image must be bytes")
    data = bytes(data)
    if not data:
        raise ValueError("the image is empty")
    if len(data) > MAX_INPUT_BYTES:
        raise ValueError(f"the image is larger than {MAX_INPUT_BYTES // (1024 * 1024)} MiB")
    kind = sniff(data)
    if kind is None:
        raise ValueError("not a PNG, JPEG or WebP image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data), formats=[kind])
            width, height = im.size
            if width <= 0 or height <= 0:
                raise ValueError("the image has no pixels")
            if width * height > MAX_PIXELS:
                raise ValueError(f"the image is {width} x {height} pixels: more than {MAX_PIXELS // 1_000_000} "
                                 "million pixels (a decompression bomb?)")
            if getattr(im, "n_frames", 1) > 1:
                im.seek(0)  # an animation: its first frame
            if kind == "JPEG":
                im.draft("RGB", (2 * SIZE, 2 * SIZE))  # decode at a reduced scale: less memory and time
            im.load()
            im = ImageOps.exif_transpose(im)
            im = _rgba(im)
            im.thumbnail((SIZE, SIZE), Image.Resampling.LANCZOS)
            if im.getchannel("A").getextrema() == (255, 255):
                im = im.convert("RGB")
            out = io.BytesIO()
            im.save(out, format="PNG", optimize=True)  # a new file: no EXIF, text or ICC chunks copied
    except ValueError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError("the image declares too many pixels (a decompression bomb?)") from None
    except MemoryError:
        raise ValueError("the image is too large to decode") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds for a damaged file
        raise ValueError(f"the {kind} image cannot be read ({type(exc).__name__})") from None
    return out.getvalue()


def _rgba(im):
    """Any mode Pillow decodes (palette, grey, 16-bit grey, CMYK, ...) as 8-bit RGBA."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    elif im.mode == "F":
        im = im.convert("L")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("PA")
    return im.convert("RGBA")


# -- fetching an image URL ----------------------------------------------------------
def public_address(address: str) -> bool:
    """True for an address the hub may fetch from: global unicast only."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_loopback or ip.is_link_local or ip.is_private
                                 or ip.is_reserved or ip.is_unspecified)


def _resolve(host: str, port: int, allow_private: bool) -> str:
    """One checked address of `host` to connect to: every address it resolves to must pass
    (a name answering one public and one private address is refused)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError) as exc:
        raise ValueError(f"the image host {host!r} cannot be resolved") from None
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if not addresses:
        raise ValueError(f"the image host {host!r} has no address")
    if not allow_private:
        bad = [a for a in addresses if not public_address(a)]
        if bad:
            raise ValueError(f"the image host {host!r} resolves to a non-public address: refused")
    return addresses[0]


def _target(url: str, allow_private: bool):
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    if not isinstance(url, str) or not url or len(url) > 2000 or not url.isascii() or any(c.isspace() for c in url):
        raise ValueError("the image URL must be an ASCII URL of at most 2000 characters, without spaces")
    try:
        parts = parse_url(url)
    except LocationParseError:
        raise ValueError("the image URL cannot be parsed") from None
    scheme = (parts.scheme or "").lower()
    if scheme != "https" and not (scheme == "http" and allow_private):
        raise ValueError("the image URL must be https")
    if parts.auth:
        raise ValueError("the image URL must not carry a user name or password")
    host = (parts.host or "").strip("[]").rstrip(".").lower()
    if not host:
        raise ValueError("the image URL has no host")
    port = parts.port or (443 if scheme == "https" else 80)
    if not 0 < port < 65536:
        raise ValueError("the image URL's port is out of range")
    path = parts.request_uri or "/"
    return scheme, host, port, path


def fetch(url: str, timeout: float = 10, max_bytes: int = MAX_INPUT_BYTES, allow_private: bool = False) -> bytes:
    """The body of `url` (an image a brand named), or ValueError with the reason."""
    import urllib3
    from urllib3.exceptions import HTTPError

    deadline = time.monotonic() + timeout
    for _hop in range(MAX_REDIRECTS + 1):
        scheme, host, port, path = _target(url, allow_private)
        address = _resolve(host, port, allow_private)
        left = deadline - time.monotonic()
        if left <= 0:
            raise ValueError(f"the image took longer than {timeout:g} s")
        limits = urllib3.Timeout(connect=min(left, 5.0), read=left)
        if scheme == "https":
            pool = urllib3.HTTPSConnectionPool(address, port, timeout=limits, retries=False, maxsize=1,
                                               server_hostname=host, assert_hostname=host, cert_reqs="CERT_REQUIRED")
        else:
            pool = urllib3.HTTPConnectionPool(address, port, timeout=limits, retries=False, maxsize=1)
        host_header = host if port == (443 if scheme == "https" else 80) else f"{host}:{port}"
        if ":" in host and not host.startswith("["):
            host_header = f"[{host}]" + ("" if port in (80, 443) else f":{port}")
        try:
            response = pool.urlopen("GET", path, redirect=False, retries=False, preload_content=False,
                                    decode_content=False, assert_same_host=False,
                                    headers={"Host": host_header, "Accept": ", ".join(FORMATS.values()),
                                             "Accept-Encoding": "identity", "User-Agent": "nfc-kiosk-hub/1"})
        except HTTPError as exc:
            pool.close()
            raise ValueError(f"the image could not be fetched ({_why(exc)})") from None
        try:
            if response.status in (301, 302, 303, 307, 308):
                location = response.headers.get("Location", "")
                if not location:
                    raise ValueError(f"the image URL redirects ({response.status}) without a Location")
                from urllib.parse import urljoin
                url = urljoin(f"{scheme}://{host_header}{path}", location)
                continue
            if response.status != 200:
                raise ValueError(f"the image URL answered HTTP {response.status}")
            encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                raise ValueError(f"the image was sent {encoding}-compressed: refused")
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ValueError(f"the image is larger than {max_bytes} bytes ({declared})")
            return _body(response, deadline, timeout, max_bytes)
        except HTTPError as exc:
            raise ValueError(f"the image could not be fetched ({_why(exc)})") from None
        finally:
            response.release_conn()
            response.close()
            pool.close()
    raise ValueError(f"the image URL redirects more than {MAX_REDIRECTS} times")


def _body(response, deadline: float, timeout: float, max_bytes: int) -> bytes:
    from urllib3.exceptions import ReadTimeoutError

    chunks, size = [], 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise ValueError(f"the image took longer than {timeout:g} s")
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(max(0.01, left))  # no single read may outlast the deadline
        try:
            chunk = response.read1(CHUNK)
        except (TimeoutError, socket.timeout, ReadTimeoutError):
            raise ValueError(f"the image took longer than {timeout:g} s") from None
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise ValueError(f"the image is larger than {max_bytes} bytes")
        chunks.append(chunk)


def _why(exc: Exception) -> str:
    text = str(exc)
    if "timed out" in text.lower():
        return "timed out"
    return type(exc).__name__ + (": " + text[:200] if text else "")
