"""Logging that keeps shoppers out of the logs.

Our own modules never log names, tokens, search terms or wishlists. Third-party libraries
would at DEBUG: urllib3 logs request lines (a staff search term is in the URL), nfcpy and
pyscard log UIDs and APDUs. `protect_privacy()` caps them at INFO whatever the root level.

    configure(verbose=False)
"""
from __future__ import annotations

import logging

CHATTY = ("urllib3", "nfc", "smartcard", "httpx", "httpcore")


def protect_privacy() -> None:
    for name in CHATTY:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def configure(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    protect_privacy()
