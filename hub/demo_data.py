"""The demo world's data, the same in every demo hub: four brands (Vietnam, Russia, Thailand,
UK) with two stores each, 20 shoppers with names in English, Vietnamese, Russian and Thai,
152 products with valid GTIN-13s and locally drawn images, the offers, the staff and their
cards, the demo keys and tokens. Nothing here touches a store: hub/demo.py seeds it (and
every name here is read from there too).

    for card in demo_cards(): print(card["uri"])
"""
from __future__ import annotations

import base64
import hashlib
import io
import random

from kiosk.api import gtin_check_digit, shopper_uri
from kiosk.pins import hash_pin

ID_HOST = "id.nfc-kiosk.dev"
ENROLLMENT_CODE = "DEMO"  # reusable demo code: brand Lotus & Linen, store Saigon Centre
DEMO_PIN = "246813"  # staff PINs are 6 to 12 digits
OLD_DEMO_PIN = "1234"  # what demo hubs seeded before issue 9 hold; seed() moves them on

BRANDS = [
    # id, name, GS1 prefix, currency, colour, stores, (adjectives, nouns), price range
    ("lotus", "Lotus & Linen", "893", "VND", (46, 125, 50),
     [("lotus-hcm", "Saigon Centre", "Ho Chi Minh City"), ("lotus-hn", "Hanoi Trang Tien", "Hanoi")],
     (["Linen", "Silk", "Cotton", "Bamboo", "Lotus"], ["Shirt", "Scarf", "Dress", "Trousers", "Tote", "Hat", "Jacket", "Skirt"]),
     (149_000, 1_990_000, 1000)),
    ("sever", "Sever Outdoor", "460", "RUB", (21, 101, 192),
     [("sever-msk", "Moscow Tverskaya", "Moscow"), ("sever-spb", "St Petersburg Nevsky", "Saint Petersburg")],
     (["Arctic", "Taiga", "Volga", "Ural", "Baikal"], ["Parka", "Boots", "Gloves", "Thermos", "Tent", "Backpack", "Hat", "Socks"]),
     (990, 19_990, 10)),
    ("siam", "Siam Street", "885", "THB", (230, 81, 0),
     [("siam-bkk", "Bangkok Siam Square", "Bangkok"), ("siam-cnx", "Chiang Mai Nimman", "Chiang Mai")],
     (["Muay", "Street", "Tuk-Tuk", "Mango", "Lanna"], ["Shorts", "Tee", "Sneakers", "Cap", "Bag", "Sandals", "Hoodie", "Towel"]),
     (199, 3_990, 10)),
    ("harbour", "Harbour & Co", "501", "GBP", (74, 20, 140),
     [("harbour-ldn", "London Carnaby", "London"), ("harbour-edi", "Edinburgh Princes St", "Edinburgh")],
     (["Harbour", "Coastal", "Tweed", "Oxford", "Highland"], ["Coat", "Jumper", "Brogues", "Umbrella", "Scarf", "Mug", "Cap", "Gloves"]),
     (999, 18_900, 100)),
]
COLOURS = ["Navy", "Sand", "Forest", "Charcoal", "Rose", "Ochre"]
BRAND_PLACES = {"lotus": ("Asia/Ho_Chi_Minh", "vi,en"), "sever": ("Europe/Moscow", "ru,en"),
                "siam": ("Asia/Bangkok", "th,en"), "harbour": ("Europe/London", "en")}
# The demo catalog in Vietnamese, Russian and Thai: "{noun} {material or collection}, {colour}"
# in each language's own order (a Thai shopper sees Thai titles around Thai buttons).
WORDS = {  # English: (vi, ru, th)
    "Shirt": ("Áo sơ mi", "Рубашка", "เสื้อเชิ้ต"), "Scarf": ("Khăn quàng", "Шарф", "ผ้าพันคอ"),
    "Dress": ("Váy liền", "Платье", "ชุดเดรส"), "Trousers": ("Quần dài", "Брюки", "กางเกงขายาว"),
    "Tote": ("Túi tote", "Сумка-шопер", "กระเป๋าโท้ท"), "Hat": ("Mũ", "Шляпа", "หมวก"),
    "Jacket": ("Áo khoác", "Куртка", "แจ็กเก็ต"), "Skirt": ("Chân váy", "Юбка", "กระโปรง"),
    "Parka": ("Áo parka", "Парка", "เสื้อพาร์กา"), "Boots": ("Giày bốt", "Ботинки", "รองเท้าบูท"),
    "Gloves": ("Găng tay", "Перчатки", "ถุงมือ"), "Thermos": ("Bình giữ nhiệt", "Термос", "กระติกน้ำร้อน"),
    "Tent": ("Lều", "Палатка", "เต็นท์"), "Backpack": ("Ba lô", "Рюкзак", "เป้สะพายหลัง"),
    "Socks": ("Tất", "Носки", "ถุงเท้า"), "Shorts": ("Quần short", "Шорты", "กางเกงขาสั้น"),
    "Tee": ("Áo phông", "Футболка", "เสื้อยืด"), "Sneakers": ("Giày thể thao", "Кроссовки", "รองเท้าผ้าใบ"),
    "Cap": ("Mũ lưỡi trai", "Кепка", "หมวกแก๊ป"), "Bag": ("Túi", "Сумка", "กระเป๋า"),
    "Sandals": ("Dép xăng đan", "Сандалии", "รองเท้าแตะ"), "Hoodie": ("Áo hoodie", "Худи", "เสื้อฮู้ด"),
    "Towel": ("Khăn tắm", "Полотенце", "ผ้าขนหนู"), "Coat": ("Áo măng tô", "Пальто", "เสื้อโค้ต"),
    "Jumper": ("Áo len", "Джемпер", "เสื้อสเวตเตอร์"), "Brogues": ("Giày brogue", "Броги", "รองเท้าบร็อก"),
    "Umbrella": ("Ô", "Зонт", "ร่ม"), "Mug": ("Cốc", "Кружка", "แก้วมัค"),
    "Linen": ("vải lanh", "Лён", "ผ้าลินิน"), "Silk": ("lụa", "Шёлк", "ผ้าไหม"),
    "Cotton": ("cotton", "Хлопок", "ผ้าฝ้าย"), "Bamboo": ("sợi tre", "Бамбук", "ใยไผ่"),
    "Lotus": ("Sen", "Лотос", "ลายบัว"), "Arctic": ("Bắc Cực", "Арктика", "อาร์กติก"),
    "Taiga": ("Taiga", "Тайга", "ไทกา"), "Volga": ("Volga", "Волга", "โวลกา"), "Ural": ("Ural", "Урал", "อูราล"),
    "Baikal": ("Baikal", "Байкал", "ไบคาล"), "Muay": ("Muay", "Муай", "มวย"), "Street": ("đường phố", "Стрит", "สตรีท"),
    "Tuk-Tuk": ("Tuk-Tuk", "Тук-тук", "ตุ๊กตุ๊ก"), "Mango": ("xoài", "Манго", "มะม่วง"),
    "Lanna": ("Lanna", "Ланна", "ล้านนา"), "Harbour": ("Harbour", "Харбор", "ฮาร์เบอร์"),
    "Coastal": ("biển", "Побережье", "ชายฝั่ง"), "Tweed": ("vải tweed", "Твид", "ผ้าทวีด"),
    "Oxford": ("Oxford", "Оксфорд", "อ็อกซ์ฟอร์ด"), "Highland": ("Cao nguyên", "Хайленд", "ไฮแลนด์"),
    "Navy": ("xanh navy", "тёмно-синий", "กรมท่า"), "Sand": ("cát", "песочный", "ทราย"),
    "Forest": ("xanh rừng", "лесной зелёный", "เขียวป่า"), "Charcoal": ("than chì", "угольный", "ถ่าน"),
    "Rose": ("hồng", "розовый", "ชมพู"), "Ochre": ("vàng đất", "охра", "เหลืองดินเผา"),
}
TITLE_FORMS = {"vi": "{noun} {adjective}, màu {colour}", "ru": "{noun} «{adjective}», цвет {colour}",
               "th": "{noun}{adjective} สี{colour}"}
OFFER_TEXTS = {
    "brand": {"vi": "{brand}: giảm 10% mọi sản phẩm trong tuần này", "ru": "{brand}: скидка 10% на всё на этой неделе",
              "th": "{brand}: ลด 10% ทุกชิ้นตลอดสัปดาห์นี้"},
    "first_visit": {"vi": "Chào mừng! Giảm 15% cho lần mua đầu tiên", "ru": "Добро пожаловать! Скидка 15% на первую покупку",
                    "th": "ยินดีต้อนรับ! ลด 15% สำหรับการซื้อครั้งแรก"},
    "returning": {"vi": "Rất vui được gặp lại bạn: gói quà miễn phí", "ru": "Рады видеть вас снова: бесплатная подарочная упаковка",
                  "th": "ยินดีที่ได้พบคุณอีกครั้ง: ห่อของขวัญฟรี"},
    "lapsed": {"vi": "Chúng tôi nhớ bạn: giảm 20% hôm nay", "ru": "Мы скучали: скидка 20% сегодня",
               "th": "คิดถึงคุณ: ลด 20% วันนี้"},
    "promo": {"vi": "{title}: giảm 25%", "ru": "{title}: скидка 25%", "th": "{title}: ลด 25%"},
}


def product_texts(adjective: str, noun: str, colour: str) -> dict:
    return {lang: {"title": form.format(noun=WORDS[noun][n], adjective=WORDS[adjective][n], colour=WORDS[colour][n])}
            for n, (lang, form) in enumerate(TITLE_FORMS.items())}
PRODUCTS_PER_BRAND = 38

SHOPPERS = [  # display name (what the screen greets), full name (staff search only), locale
    ("Emma", "Emma Walker", "en"), ("Lan", "Nguyễn Thị Lan", "vi"), ("Анна", "Анна Смирнова", "ru"),
    ("สมชาย", "สมชาย ใจดี", "th"), ("James", "James Carter", "en"), ("Minh", "Trần Văn Minh", "vi"),
    ("Дмитрий", "Дмитрий Иванов", "ru"), ("นภา", "นภา ศรีสุข", "th"), ("Olivia", "Olivia Bennett", "en"),
    ("Hoàng Anh", "Lê Hoàng Anh", "vi"), ("Екатерина", "Екатерина Волкова", "ru"), ("กิตติ", "กิตติ วงศ์ไทย", "th"),
    ("Liam", "Liam Hughes", "en"), ("Thu Hà", "Phạm Thu Hà", "vi"), ("Михаил", "Михаил Кузнецов", "ru"),
    ("พิมพ์ชนก", "พิมพ์ชนก แก้วมณี", "th"), ("Sophie", "Sophie Turner", "en"), ("Quốc Bảo", "Võ Quốc Bảo", "vi"),
    ("Ольга", "Ольга Попова", "ru"), ("อนันต์", "อนันต์ รุ่งเรือง", "th"),
]
STAFF = [("staff-mai", "Mai (staff)", "staff", "04A1B2C3D4E501"), ("tech-ivan", "Ivan (technician)", "technician",
                                                                     "04A1B2C3D4E502")]
# Staff are people of a brand: Mai works at Lotus & Linen's Saigon Centre (the DEMO code's
# store); Ivan, the technician, looks after the kiosks of every demo brand, at every store.
STAFF_ROLES = [("staff-mai", "lotus", "lotus-hcm"), *(("tech-ivan", b[0], "") for b in BRANDS)]


def allows_staff_search(index: int) -> bool:
    """Shoppers 0-3, 8-11 and 16-19: one of each language in every group of four."""
    return (index // 4) % 2 == 0


def token_for(index: int) -> str:
    digest = hashlib.sha256(f"nfc-kiosk demo shopper {index}".encode()).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def gtin13(prefix: str, item: int) -> str:
    body = f"{prefix}{1000 + item:04d}{item:05d}"[:12]
    return body + str(gtin_check_digit(body))


def pin_hash(pin: str) -> str:
    """Deterministic for the demo world (a fixed salt); real PINs get a random one."""
    return hash_pin(pin, salt=hashlib.sha256(b"demo-salt").digest()[:16])


def product_image(title: str, colour: tuple[int, int, int], seed: int) -> bytes:
    """A 256x256 PNG drawn locally (no network): brand colour, a shape, the initials."""
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    image = Image.new("RGB", (256, 256), tuple(min(255, c + 150) for c in colour))
    draw = ImageDraw.Draw(image)
    shade = tuple(max(0, c - rng.randint(0, 40)) for c in colour)
    if seed % 3 == 0:
        draw.ellipse((48, 40, 208, 200), fill=shade)
    elif seed % 3 == 1:
        draw.rounded_rectangle((52, 44, 204, 196), radius=28, fill=shade)
    else:
        draw.polygon([(128, 36), (216, 196), (40, 196)], fill=shade)
    initials = "".join(word[0] for word in title.split()[:2]).upper()
    draw.text((128, 120), initials, fill=(255, 255, 255), anchor="mm", font_size=64)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def products() -> list[dict]:
    rows = []
    for brand_index, (brand_id, _, prefix, currency, colour, _, (adjectives, nouns), (low, high, step)) in enumerate(BRANDS):
        rng = random.Random(f"products-{brand_id}")
        combos = [(a, n, c) for a in adjectives for n in nouns for c in COLOURS]
        rng.shuffle(combos)
        for i, (adjective, noun, colour_name) in enumerate(combos[:PRODUCTS_PER_BRAND]):
            amount = rng.randrange(low, high, step)
            price = f"{amount / 100:.2f}" if currency == "GBP" else str(amount)
            rows.append({"gtin": "0" + gtin13(prefix, brand_index * 100 + i), "brand_id": brand_id,
                         "title": f"{adjective} {noun}, {colour_name}", "price": price, "currency": currency,
                         "texts": product_texts(adjective, noun, colour_name),
                         "online": int(rng.random() < 0.8), "colour": colour, "seed": brand_index * 100 + i})
    return rows


def demo_cards() -> list[dict]:
    cards = [{"kind": "shopper", "name": name, "locale": locale, "token": token_for(i),
              "uri": shopper_uri(token_for(i), ID_HOST)} for i, (name, _, locale) in enumerate(SHOPPERS)]
    cards += [{"kind": role, "name": name, "uid": uid, "pin": DEMO_PIN} for _, name, role, uid in STAFF]
    return cards


def demo_products(limit: int | None = None) -> list[dict]:
    return [{"gtin": p["gtin"], "title": p["title"], "brand": p["brand_id"],
             "uri": f"https://id.gs1.org/01/{p['gtin']}"} for p in products()[:limit]]


def brand_key(brand_id: str) -> str:
    """The demo brand's API key (a demo world's keys are public: never seed a real hub with it)."""
    return "bk_demo_" + hashlib.sha256(f"nfc-kiosk demo brand key {brand_id}".encode()).hexdigest()[:32]


def offer_rows(brand_id: str, promo: list[dict], until: str) -> list[dict]:
    name = BRANDS_BY_ID[brand_id]
    rows = [{"id": "00", "kind": "brand", "discount_pct": 10, "title": f"{name}: 10% off everything this week",
             "titles": {lang: t.format(brand=name) for lang, t in OFFER_TEXTS["brand"].items()}}]
    for n, (kind, pct, title) in enumerate([("first_visit", 15, "Welcome! 15% off your first purchase"),
                                            ("returning", 0, "Good to see you again: free gift wrapping"),
                                            ("lapsed", 20, "We missed you: 20% off today")], start=1):
        rows.append({"id": f"{n:02d}", "kind": kind, "discount_pct": pct, "title": title, "titles": OFFER_TEXTS[kind]})
    for n, p in enumerate(promo, start=4):
        rows.append({"id": f"{n:02d}", "kind": "wishlist_promo", "gtin": p["gtin"], "discount_pct": 25,
                     "title": f"{p['title']}: 25% off",
                     "titles": {lang: OFFER_TEXTS["promo"][lang].format(title=text["title"])
                                for lang, text in p["texts"].items()}})
    for row in rows:
        row["valid_until"] = until
    return rows


BRANDS_BY_ID = {b[0]: b[1] for b in BRANDS}
SHOPS = {b[0]: [shop[0] for shop in b[5]] for b in BRANDS}


def card_id(who) -> str:
    """A demo card's public id ("card-" and 12 hex digits), the same in every demo hub."""
    return "card-" + hashlib.sha256(f"nfc-kiosk demo card {who}".encode()).hexdigest()[:12]


def page_path(index: int) -> str:
    """Where demo shopper `index`'s own page opens on a hub (what the card's URL names)."""
    return f"/s/{token_for(index)}"


def fleet_token(i: int) -> str:
    """The card token of fleet shopper i (bench and load tests)."""
    return "fleet" + hashlib.sha256(f"fleet-shopper-{i}".encode()).hexdigest()[:27]
