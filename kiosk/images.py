"""Product images on disk, for offline use: fetched once from the hub, kept in the data dir.

    images = ImageStore(cache, hub, config.images_dir)
    images.warm()                         # worker thread: learn what is already on disk
    path = images.local(item.image)       # memory only: safe on the UI thread
    path = images.fetch(item.image)       # blocking: call from a worker thread

Files are named by a hash of the hub path and written atomically; only PNG and JPEG bytes
are kept (anything else is refused, never shown). There is no in-memory copy here: the UI's
texture cache is the only one, and it is dropped when a shopper's session ends.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path

from kiosk import errors as E

log = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 2 * 1024 * 1024
MAGIC = {b"\x89PNG\r\n\x1a\n": ".png", b"\xff\xd8\xff": ".jpg"}


def image_kind(data: bytes) -> str | None:
    return next((ext for magic, ext in MAGIC.items() if data.startswith(magic)), None)


class ImageStore:
    def __init__(self, cache, hub, directory: Path) -> None:
        self.cache, self.hub, self.directory = cache, hub, Path(directory)
        self._lock = threading.Lock()
        self._failed: set[str] = set()  # paths the hub has no image for (until restart)
        self._known: dict[str, Path] = {}  # hub path -> file on disk (names only, no pixels)

    def warm(self) -> None:
        """Learn which images are on disk (SQLite + stat): from a worker thread, at start."""
        for path, file in self.cache.image_files():
            if file.is_file():
                self._known.setdefault(path, file)

    def local(self, path: str) -> Path | None:
        """A file already here, from memory only: no disk, no lock, safe on the UI thread."""
        return self._known.get(path) if path else None

    def fetch(self, path: str, timeout: float = 3.0) -> Path | None:
        """The local file for `path`, downloading it when missing. None when the hub has no
        image (the UI draws a placeholder). Raises HubUnavailable when the hub is away."""
        found = self.local(path) or (self.cache.image_file(path) if path else None)
        if found:
            self._known[path] = found
        if found or not path or path in self._failed:
            return found
        try:
            data = self.hub.image(path, timeout=timeout)
        except (E.NotFound, E.HubProtocolError):
            self._failed.add(path)
            return None
        kind = image_kind(data or b"")
        if kind is None or len(data) > MAX_IMAGE_BYTES:
            log.warning("the hub sent something that is not a PNG or JPEG image; not kept")
            self._failed.add(path)
            return None
        name = hashlib.sha256(path.encode()).hexdigest()[:32] + kind
        target = self.directory / name
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".part")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            self.cache.put_image(path, target)
            self._known[path] = target
        return target
