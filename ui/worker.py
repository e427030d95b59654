"""Work that may block (hub calls, disk writes) runs here, never on the UI thread; its result
comes back on the UI thread through the injected `dispatch` (Kivy's Clock in the app).

    background = Background(dispatch)
    background.run(service.staff_search, "lan", then=screen.show_results)
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

log = logging.getLogger(__name__)


class Background:
    def __init__(self, dispatch: Callable[[Callable[[], None]], None], workers: int = 2) -> None:
        self.dispatch = dispatch
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ui-work")
        self.generation = 0  # bumped when a session ends: late answers for it are dropped

    def run(self, fn: Callable, *args, then: Callable | None = None, keep: bool = False) -> None:
        generation = self.generation

        def work() -> None:
            try:
                result = fn(*args)
            except Exception:  # a failed call must never reach the UI as a traceback
                log.exception("background call %s failed", getattr(fn, "__name__", fn))
                return
            if then is not None:
                self.dispatch(lambda: (keep or generation == self.generation) and then(result))

        self.pool.submit(work)

    def forget(self) -> None:
        """The session ended: answers to calls made for it are not shown."""
        self.generation += 1

    def shutdown(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class ImageLoader:
    """A product picture: the file on disk right away, or fetched in the background."""

    def __init__(self, service, background: Background) -> None:
        self.service, self.background = service, background

    def get(self, path: str, on_ready: Callable) -> str | None:
        found = self.service.image_file(path)
        if found:
            return str(found)
        self.background.run(self.service.fetch_image, path, then=on_ready)
        return None
