"""Text formatting: pure functions, no Kivy."""
from kiosk import api
from ui import format as fmt
from ui import theme


def gettext(s):
    return s


def ngettext(s, p, n):
    return s if n == 1 else p


def item(**kw):
    return api.WishlistItem(gtin="0" * 14, title="Silk Hat", brand="lotus", brand_name="Lotus & Linen", **kw)


def test_prices_follow_the_language_not_the_currency():
    assert fmt.price("1234567", "VND", "vi") == "1.234.567\xa0₫"
    assert fmt.price("1234.5", "THB", "th") == "฿1,234.50"
    assert fmt.price("1234.5", "RUB", "ru") == "1\xa0234,50\xa0₽"
    assert fmt.price("19.9", "GBP", "en") == "£19.90"
    # CLDR gives English no symbol for the rouble or the baht: the home country's symbol, not the code
    assert fmt.price("15690", "RUB", "en") == "₽15,690.00" and fmt.price("590", "THB", "en") == "฿590.00"
    assert fmt.price("250000", "VND", "en") == "₫250,000"  # no decimals for the dong, in any language
    assert fmt.price("15690", "RUB", "th") == "₽15,690.00" and fmt.price("15690", "RUB", "vi") == "15.690,00\xa0₽"
    assert fmt.price("", "GBP", "en") == "" and fmt.price("abc", "GBP", "en") == ""


def test_where_to_get_it_most_useful_first():
    assert fmt.availability(item(available_here=3, location="4"), gettext, ngettext) == "3 on the shelf here, aisle 4"
    assert fmt.availability(item(available_here=1), gettext, ngettext) == "1 on the shelf here"
    assert fmt.availability(item(elsewhere=("Hanoi Trang Tien",), online=True), gettext, ngettext) == "at Hanoi Trang Tien"
    assert fmt.availability(item(online=True), gettext, ngettext) == "online only"
    assert fmt.availability(item(), gettext, ngettext) == "not available right now"
    assert [fmt.availability_kind(i) for i in (item(available_here=2), item(elsewhere=("x",)), item(online=True))] == [
        "here", "elsewhere", "online"]


def test_shelf_here_first_and_personal_offers_first_keep_the_hubs_order_otherwise():
    items = [item(online=True), item(available_here=2, location="1"), item(), item(available_here=1)]
    assert [i.available_here for i in fmt.order_wishlist(items)] == [2, 1, 0, 0]
    offers = [api.Offer("1", "brand", "brand"), api.Offer("2", "mine", "returning", personal=True),
              api.Offer("3", "brand2", "brand")]
    assert [o.offer_id for o in fmt.order_offers(offers)] == ["2", "1", "3"]


def test_greeting_by_visit_and_thai_is_shaped_as_thai():
    assert fmt.greeting("Emma", gettext, "first") == "Welcome, Emma!"
    assert fmt.greeting("Emma", gettext, "lapsed") == "Welcome back, Emma!"
    assert fmt.greeting("Emma", gettext) == "Hello, Emma!"
    assert fmt.greeting("", gettext) == "Welcome!"
    assert fmt.script_for("สวัสดีคุณ James") == "Thai"
    assert fmt.script_for("Xin chào Nguyễn") == fmt.script_for("Анна") == "Latn"


def test_times_sizes_and_pin_messages():
    assert fmt.ago(180, "en") == "3 minutes ago"
    assert fmt.ago(180, "ru") == "3 минуты назад"
    assert fmt.ago(180, "vi") == "3 phút trước"
    assert fmt.disk(84_300_000_000, "ru") == "84,3 ГБ" and fmt.disk(84_300_000_000, "en") == "84.3 GB"
    assert fmt.latency(None, "en") == "—" and fmt.latency(6.4, "en") == "6 ms"
    assert fmt.latency(6.4, "ru") == "6 мс" and fmt.latency(6.4, "vi") == "6 mili giây"
    assert fmt.latency(6.4, "th") == "6 มิลลิวินาที"
    assert fmt.locked_for(290, gettext, ngettext) == "Too many wrong PINs. Try again in 5 minutes, or ask a manager."
    assert fmt.tries_left(1, gettext, ngettext) == "Wrong PIN. 1 try left."
    assert fmt.pin_dots(3) == "•  •  •" and fmt.pin_dots(0) == ""


def test_every_colour_pair_on_screen_meets_wcag_aa():
    assert theme.contrast(theme.WHITE, (0, 0, 0, 1)) == 21.0
    weak = {name: round(theme.contrast(fg, bg), 2) for name, (fg, bg) in theme.CONTRAST_PAIRS.items()
            if theme.contrast(fg, bg) < 4.5}
    assert not weak
