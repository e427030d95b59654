"""The checks every brand feed's rows go through, and the report a batch call answers with.

Feed rows are untrusted: each is checked on its own and refused with the field and the reason
(RowError); a refused row is reported by its index and key, the good ones go on to land. The
feeds (hub/brand_catalog.py, brand_stores.py, brand_stock.py, brand_offers.py) share these
checks, their per-row statuses and the version counters kiosks pull changes by.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from kiosk import api
from kiosk.api import gtin_check_digit
from hub import inputs
from hub.store import HubFailure

STORE_CODE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,31}")
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,4}")
CURRENCY = re.compile(r"[A-Z]{3}")
MAX_ROWS = 5000  # rows in one batch call
MAX_TITLE, MAX_DESCRIPTION, MAX_NAME, MAX_URL = 200, 2000, 120, 2000
MAX_LANGUAGES = 40  # texts in one product

CREATED, UPDATED, UNCHANGED, STALE, REJECTED = "created", "updated", "unchanged", "stale", "rejected"
STATUSES = (CREATED, UPDATED, UNCHANGED, STALE, REJECTED)


class RowError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def not_found(what: str) -> HubFailure:
    return HubFailure(api.P_NOT_FOUND, f"no such {what} in this brand", 404)


def _text(value, field: str, limit: int, required: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise RowError(field, "must be text")
    value = value.strip()
    if required and not value:
        raise RowError(field, "is required")
    if len(value) > limit:
        raise RowError(field, f"is longer than {limit} characters ({len(value)})")
    if not inputs.safe(value):
        raise RowError(field, "holds control or bidi characters")
    return value


def normalise_gtin(value, field: str = "gtin") -> str:
    """GTIN-8/12/13/14 as its 14-digit form; RowError when it is not one (check digit included)."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise RowError(field, "must be a GTIN (8, 12, 13 or 14 digits)")
    if len(value) <= 16:
        known = _GTINS.get(value)
        if known is not None:
            return known
    digits = value.strip()
    if not (digits.isascii() and digits.isdigit() and len(digits) in (8, 12, 13, 14)):
        raise RowError(field, "must be a GTIN (8, 12, 13 or 14 digits)")
    if gtin_check_digit(digits[:-1]) != int(digits[-1]):
        raise RowError(field, f"check digit is wrong (expected {gtin_check_digit(digits[:-1])})")
    if len(_GTINS) >= 200_000:
        _GTINS.clear()
    _GTINS[value] = digits.zfill(14)
    return digits.zfill(14)


_GTINS: dict[str, str] = {}  # GTINs seen valid (a feed names the same products store after store)


def _price(value, field: str = "price") -> str:
    if isinstance(value, bool) or value is None or value == "":
        raise RowError(field, "is required")
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise RowError(field, "must be a number such as 12.90") from None
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e12"):
        raise RowError(field, "must be a number from 0 to 10^12")
    if amount.as_tuple().exponent < -4:
        raise RowError(field, "has more than 4 decimals")
    return format(amount.normalize(), "f") if amount == amount.to_integral() else format(amount, "f")


def _currency(value, field: str = "currency") -> str:
    if not isinstance(value, str) or not CURRENCY.fullmatch(value.strip().upper()):
        raise RowError(field, "must be an ISO 4217 code such as VND, RUB, THB or GBP")
    return value.strip().upper()


def _bool(value, field: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "y"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "n"):
        return False
    raise RowError(field, "must be true or false")


def _language(value, field: str) -> str:
    if not isinstance(value, str) or len(value) > 35 or not LANGUAGE.fullmatch(value):
        raise RowError(field, "is not a language tag (BCP 47, such as vi, th or pt-BR)")
    return value


def _texts(value, fields: tuple[str, ...], limits: dict) -> dict:
    """{"vi": {"title": ..., "description": ...}} (products) checked and trimmed."""
    if value in (None, ""):
        return {}
    if not isinstance(value, dict) or len(value) > MAX_LANGUAGES:
        raise RowError("texts", f"must be an object of at most {MAX_LANGUAGES} languages")
    out = {}
    for lang, entry in value.items():
        lang = _language(lang, f"texts[{echo(lang, 35)}]")
        if isinstance(entry, str):
            entry = {fields[0]: entry}
        if not isinstance(entry, dict) or set(entry) - set(fields):
            raise RowError(f"texts[{lang}]", f"must be an object of {', '.join(fields)}")
        clean = {f: _text(entry.get(f), f"{f}[{lang}]", limits[f]) for f in fields if entry.get(f) not in (None, "")}
        if clean:
            out[lang] = clean
    return dict(sorted(out.items()))


def _image_url(value) -> str:
    value = _text(value, "image_url", MAX_URL)
    if value and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", value):
        raise RowError("image_url", "must be an http(s) URL")
    return value


def _rows(body_rows, what: str) -> list:
    if not isinstance(body_rows, list):
        raise HubFailure(api.P_INVALID, f"{what} must be a list of rows", 422)
    if len(body_rows) > MAX_ROWS:
        raise HubFailure(api.P_INVALID, f"at most {MAX_ROWS} rows in one call; send the rest in another", 422)
    return body_rows


def echo(value, limit: int = 64) -> str:
    """Caller-given text repeated in an answer: cut, and escaped when it holds control, bidi or
    lone surrogate characters (which no UTF-8 answer can carry)."""
    value = str(value)[:limit]
    return value if inputs.safe(value) else value.encode("utf-8", "backslashreplace").decode("ascii", "replace")


def _result(index: int, key: str, status: str, errors: list | None = None) -> dict:
    return {"index": index, "key": echo(key), "status": status,
            "errors": [{"field": echo(e["field"], 80), "reason": echo(e["reason"], 300)} for e in errors or []]}


def report(results: list[dict]) -> dict:
    counts = {s: 0 for s in STATUSES}
    for r in results:
        counts[r["status"]] += 1
    return {"results": results, "counts": counts}


def _checked(rows: list, check, key_field: str) -> tuple[list[tuple[int, dict]], list[dict]]:
    """(index, clean row) for the good rows and the results of the refused ones."""
    good, refused = [], []
    for index, row in enumerate(rows):
        if not isinstance(row, dict):
            refused.append(_result(index, "", REJECTED, [{"field": "", "reason": "a row must be an object"}]))
            continue
        try:
            good.append((index, check(row)))
        except RowError as exc:
            key = row.get(key_field)
            refused.append(_result(index, key[:64] if isinstance(key, str) else "", REJECTED,
                                   [{"field": exc.field, "reason": exc.reason}]))
    return good, refused


def _only_known(row: dict, allowed: set[str]) -> None:
    unknown = sorted(echo(k, 40) for k in row if k not in allowed)
    if unknown:
        raise RowError(unknown[0], "is not a field of this feed")


def _version_block(conn, name: str, n: int) -> int:
    """Reserve n versions of counter `name` (under its row lock until commit, so versions
    commit in order); the first of them."""
    top = conn.execute("INSERT INTO counters(name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                       "SET value = counters.value + excluded.value RETURNING value", (name, n)).fetchone()[0]
    return top - n + 1


def _newest(good: list[tuple[int, dict]]) -> tuple[list[tuple[int, dict]], list[dict]]:
    """The same store and product twice in one stock call: the row true latest (`as_of`; the
    later row on a tie) counts, the others are stale."""
    best: dict[tuple[str, str], tuple[int, dict]] = {}
    for index, row in good:
        key = (row["code"], row["gtin"])
        if key not in best or row["as_of"] >= best[key][1]["as_of"]:
            best[key] = (index, row)
    keep = {index for index, _ in best.values()}
    return ([(i, r) for i, r in good if i in keep],
            [_result(i, r["gtin"], STALE) for i, r in good if i not in keep])


def _dupes(good: list[tuple[int, dict]], key) -> tuple[list[tuple[int, dict]], list[dict]]:
    """A key given twice in one call: the last row wins, earlier ones are refused (named)."""
    last = {key(row): index for index, row in good}
    keep, refused = [], []
    for index, row in good:
        if last[key(row)] == index:
            keep.append((index, row))
        else:
            refused.append(_result(index, str(key(row)), REJECTED,
                                   [{"field": "", "reason": f"the same row key appears again at row {last[key(row)]}"}]))
    return keep, refused
