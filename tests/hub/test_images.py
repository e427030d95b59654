"""Product images (hub/images.py): real files made with Pillow, hostile ones, and fetches from
real HTTP servers on loopback (a plain one, one that redirects, one that trickles)."""
from __future__ import annotations

import http.server
import io
import threading
import time

import pytest
from PIL import Image

from hub import images


def picture(fmt: str, size=(800, 600), mode="RGB", **save) -> bytes:
    im = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else None)
    im.paste((20, 90, 200) if mode == "RGB" else 128, (0, 0, size[0] // 2, size[1] // 2))
    out = io.BytesIO()
    im.save(out, format=fmt, **save)
    return out.getvalue()


def opened(png: bytes) -> Image.Image:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    im = Image.open(io.BytesIO(png))
    im.load()
    return im


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_become_a_png_that_fits_the_kiosk_box(fmt):
    im = opened(images.prepare(picture(fmt)))
    assert im.format == "PNG" and im.size == (256, 192)  # aspect kept, not padded
    assert im.mode == "RGB"  # opaque: no alpha channel kept
    left, right = im.getpixel((10, 10)), im.getpixel((250, 180))
    assert left[2] > 150 and right[0] > 150  # the picture itself, not a blank


def test_a_small_image_is_not_enlarged_and_transparency_stays():
    im = Image.new("RGBA", (40, 30), (0, 0, 0, 0))
    im.paste((0, 200, 0, 255), (0, 0, 20, 30))
    out = io.BytesIO()
    im.save(out, format="PNG")
    got = opened(images.prepare(out.getvalue()))
    assert got.size == (40, 30) and got.mode == "RGBA"
    assert got.getpixel((5, 5))[3] == 255 and got.getpixel((35, 5))[3] == 0


def test_exif_orientation_is_applied_and_metadata_is_stripped():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to view
    exif[0x010F] = "SecretCam"
    jpeg = picture("JPEG", size=(600, 300), exif=exif.tobytes())
    png = images.prepare(jpeg)
    im = opened(png)
    assert im.size == (128, 256)  # a portrait once turned
    assert b"SecretCam" not in png and b"eXIf" not in png and not im.info.get("exif")


def test_palette_grey_cmyk_and_16_bit_images_are_converted():
    for mode, fmt in (("P", "PNG"), ("L", "PNG"), ("LA", "PNG"), ("CMYK", "JPEG"), ("I;16", "PNG"), ("1", "PNG")):
        im = Image.new(mode, (300, 300))
        out = io.BytesIO()
        im.save(out, format=fmt)
        assert opened(images.prepare(out.getvalue())).size == (256, 256), mode


def test_an_animation_gives_its_first_frame():
    frames = [Image.new("RGB", (100, 100), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    out = io.BytesIO()
    frames[0].save(out, format="WEBP", save_all=True, append_images=frames[1:], duration=100, loop=0)
    im = opened(images.prepare(out.getvalue()))
    r, g, b = im.getpixel((50, 50))[:3]
    assert r > 200 and g < 60 and b < 60


def test_a_decompression_bomb_is_refused_before_decoding():
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, format="PNG")  # 48 MP in a few kB
    bomb = out.getvalue()
    assert len(bomb) < 100_000
    started = time.monotonic()
    with pytest.raises(ValueError, match="pixels"):
        images.prepare(bomb)
    assert time.monotonic() - started < 1.0


def test_a_png_declaring_an_absurd_size_is_refused():
    import struct
    import zlib
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    idat = b"IDAT" + zlib.compress(b"\0" * 1000)
    png = (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
           + struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat)))
    with pytest.raises(ValueError, match="pixels"):
        images.prepare(png)


def test_a_text_file_named_png_and_other_non_images_are_refused():
    for data in (b"hello, I am a .png really", b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"GIF89a" + b"\0" * 40,
                 picture("BMP"), picture("TIFF")):
        with pytest.raises(ValueError, match="not a PNG, JPEG or WebP"):
            images.prepare(data)
    with pytest.raises(ValueError, match="empty"):
        images.prepare(b"")


def test_a_damaged_image_is_refused_with_a_reason():
    good = picture("PNG")
    with pytest.raises(ValueError, match="cannot be read"):
        images.prepare(good[:200])
    with pytest.raises(ValueError, match="cannot be read"):
        images.prepare(b"\xff\xd8\xff\xe0" + b"\x00" * 500)


def test_the_type_is_sniffed_not_claimed():
    # A JPEG in a file that starts like nothing else is a JPEG; PNG bytes are a PNG whatever the name.
    assert images.sniff(picture("JPEG")) == "JPEG" and images.sniff(picture("WEBP")) == "WEBP"
    assert images.sniff(b"RIFF\0\0\0\0WAVEfmt ") is None


def test_a_9_mib_body_is_refused():
    with pytest.raises(ValueError, match="8 MiB"):
        images.prepare(picture("PNG")[:100] + b"\0" * (9 * 1024 * 1024))


# -- fetch -------------------------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802
        action = self.routes.get(self.path)
        if action is None:
            self.send_error(404)
            return
        action(self)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    routes: dict = {}
    handler = type("H", (Handler,), {"routes": routes})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.routes = routes
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def send(body: bytes, status=200, headers=None):
    def action(h):
        h.send_response(status)
        for k, v in (headers or {"Content-Type": "image/png", "Content-Length": str(len(body))}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
    return action


def test_fetch_from_loopback_works_when_private_addresses_are_allowed(server):
    png = picture("PNG")
    server.routes["/p.png"] = send(png)
    got = images.fetch(server.base + "/p.png", allow_private=True)
    assert got == png
    assert opened(images.prepare(got)).size == (256, 192)


def test_fetch_refuses_loopback_private_and_metadata_addresses(server):
    server.routes["/p.png"] = send(picture("PNG"))
    with pytest.raises(ValueError, match="https"):
        images.fetch(server.base + "/p.png")  # plain http, never without allow_private
    for url in ("https://127.0.0.1:5432/", "https://localhost/x.png", "https://169.254.169.254/latest/meta-data/",
                "https://10.0.0.8/a.png", "https://[::1]/a.png", "https://[::ffff:127.0.0.1]/a.png",
                "https://0.0.0.0/a.png", "https://224.0.0.1/a.png", "https://100.64.0.1/a.png"):
        with pytest.raises(ValueError, match="non-public"):
            images.fetch(url, timeout=2)
    for url in ("ftp://example.com/a.png", "file:///etc/passwd", "https://user:pw@example.com/a.png", "https://",
                "gopher://127.0.0.1:5432/"):
        with pytest.raises(ValueError):
            images.fetch(url, timeout=2)


def test_public_address_rules():
    assert images.public_address("93.184.215.14") and images.public_address("2606:4700::1111")
    for a in ("127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
              "::1", "fe80::1", "fc00::1", "::ffff:10.0.0.1", "240.0.0.1", "255.255.255.255", "not an address"):
        assert not images.public_address(a), a


def test_a_redirect_to_loopback_is_refused(server, monkeypatch):
    """A public name that redirects to 127.0.0.1: every hop is checked again."""
    server.routes["/go"] = send(b"", 302, {"Location": "http://127.0.0.1:5432/", "Content-Length": "0"})
    port = server.server_address[1]
    real = images._resolve

    def resolve(host, p, allow_private):  # images.example.com is "public" and served by the test server
        if host == "images.example.com":
            return "127.0.0.1"
        return real(host, p, False)
    monkeypatch.setattr(images, "_resolve", resolve)
    monkeypatch.setattr(images, "_target", lambda url, allow: _plain_target(url))
    with pytest.raises(ValueError, match="non-public"):
        images.fetch(f"http://images.example.com:{port}/go")


def _plain_target(url):
    from urllib3.util import parse_url
    parts = parse_url(url)
    return parts.scheme, parts.host, parts.port or 80, parts.request_uri


def test_redirects_are_followed_at_most_three_times(server):
    png = picture("PNG")
    server.routes["/p.png"] = send(png)
    for i in range(5):
        server.routes[f"/r{i}"] = send(b"", 302, {"Location": f"/r{i + 1}" if i < 4 else "/p.png", "Content-Length": "0"})
    assert images.fetch(server.base + "/r2", allow_private=True) == png  # three hops
    with pytest.raises(ValueError, match="redirects more than 3"):
        images.fetch(server.base + "/r0", allow_private=True)


def test_a_body_over_the_limit_is_refused_while_streaming(server):
    big = b"\0" * (9 * 1024 * 1024)
    server.routes["/declared"] = send(big)
    server.routes["/chunked"] = send(big, headers={"Content-Type": "image/png", "Connection": "close"})  # no length
    with pytest.raises(ValueError, match="larger than"):
        images.fetch(server.base + "/declared", allow_private=True)
    with pytest.raises(ValueError, match="larger than"):
        images.fetch(server.base + "/chunked", allow_private=True)


def test_a_compressed_transfer_is_refused(server):
    server.routes["/gz"] = send(b"\x1f\x8b" + b"\0" * 30, headers={"Content-Encoding": "gzip", "Content-Length": "32"})
    with pytest.raises(ValueError, match="compressed"):
        images.fetch(server.base + "/gz", allow_private=True)


def test_a_server_that_trickles_bytes_hits_the_deadline(server):
    def trickle(h):
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        try:
            for _ in range(100):
                h.wfile.write(b"\0")
                h.wfile.flush()
                time.sleep(0.1)
        except OSError:
            pass
    server.routes["/slow"] = trickle
    started = time.monotonic()
    with pytest.raises(ValueError, match="longer than"):
        images.fetch(server.base + "/slow", timeout=1.0, allow_private=True)
    assert time.monotonic() - started < 2.0


def test_a_server_that_never_answers_hits_the_deadline(server):
    server.routes["/silent"] = lambda h: time.sleep(5)
    started = time.monotonic()
    with pytest.raises(ValueError):
        images.fetch(server.base + "/silent", timeout=1.0, allow_private=True)
    assert time.monotonic() - started < 2.0


def test_http_errors_are_reasons(server):
    with pytest.raises(ValueError, match="HTTP 404"):
        images.fetch(server.base + "/missing", allow_private=True)
    with pytest.raises(ValueError, match="could not be fetched"):
        images.fetch("http://127.0.0.1:1/x.png", allow_private=True, timeout=2)
