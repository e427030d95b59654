"""The shopper screen: greeting, wishlist with availability here, offers, Done.

Everything shown comes from a `ShopperView`; `clear()` removes every trace of the shopper
from the widgets when the session ends.
"""
from __future__ import annotations

from kivy.properties import ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen

from ui import format as fmt
from ui.i18n import tr


class WishlistRow(BoxLayout):
    title = StringProperty("")
    brand = StringProperty("")
    where = StringProperty("")
    price = StringProperty("")


class ShopperScreen(Screen):
    greeting = StringProperty("")
    source_text = StringProperty("")
    notice = StringProperty("")
    idle_warning = StringProperty("")
    on_done = ObjectProperty(None, allownone=True)

    def show(self, view, guest: bool = False) -> None:
        self.greeting = fmt.greeting(view.display_name, tr._)
        if view.source == "cache":
            self.source_text = tr._("Offline: saved %(minutes)d min ago") % {"minutes": int(view.age_s // 60)}
        else:
            self.source_text = ""
        self.notice = tr._("Tap products to save them to your wishlist") if not guest else tr._(
            "We'll add your saves to your profile once we're back online")
        wishlist = self.ids.wishlist
        wishlist.clear_widgets()
        language = tr.language
        for item in view.wishlist:
            wishlist.add_widget(WishlistRow(
                title=item.title or tr._("Saved product"), brand=item.brand_name,
                where=fmt.availability(item, tr._, tr.ngettext), price=fmt.price(item.price, item.currency, language)))
        if not view.wishlist:
            wishlist.add_widget(Label(text=tr._("Your wishlist is empty: tap a product tag to save it"),
                                      color=(0.2, 0.2, 0.25, 1), font_size="20sp", size_hint_y=None, height=80))
        offers = self.ids.offers
        offers.clear_widgets()
        for offer in view.offers:
            offers.add_widget(Label(text=offer.title, color=(0.45, 0.1, 0.3, 1) if offer.personal else (0.2, 0.2, 0.25, 1),
                                    font_size="20sp", size_hint_y=None, height=64, text_size=(360, None),
                                    halign="left"))

    def clear(self) -> None:
        self.greeting = self.source_text = self.notice = self.idle_warning = ""
        self.ids.wishlist.clear_widgets()
        self.ids.offers.clear_widgets()

    def done(self) -> None:
        if self.on_done:
            self.on_done()
