"""The shopper screen: greeting, the wishlist as cards (shelf here first), offers (personal
first), the sharing question, the undo of a product tap, Done.

Everything shown comes from one `ShopperView`; `clear()` removes every trace of the shopper
from the widgets (texts, pictures, the view itself) when the session ends.
"""
from __future__ import annotations

from kivy.clock import Clock
from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.screenmanager import Screen

from kiosk import api
from kiosk.catalog import title_in
from ui import format as fmt
from ui.i18n import tr
from ui.widgets import KLabel, ProductCard, WidgetPool


class OfferRow(KLabel):
    personal = BooleanProperty(False)


class ShopperScreen(Screen):
    greeting = StringProperty("")
    source_text = StringProperty("")
    notice = StringProperty("")
    idle_warning = StringProperty("")
    ask_sharing = BooleanProperty(False)
    sharing_note = StringProperty("")
    toast = StringProperty("")
    undo_token = StringProperty("")
    online = BooleanProperty(True)
    __events__ = ("on_done", "on_sharing", "on_undo", "on_language")

    def __init__(self, images=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.images = images  # ui.worker.ImageLoader: a file on disk now, or later via Clock
        self.view = None
        self.guest = False
        self._saved_gtin = ""
        self._toast_event = None
        # what the wishlist and offers widgets show now: (language, items); an equal view
        # (the hub's answer after the cached paint, mostly) changes no widget
        self._wishlist_key = self._offers_key = None
        self._cards = WidgetPool(self.ids.wishlist, ProductCard)
        self._offer_rows = WidgetPool(self.ids.offers, OfferRow)
        self._empty = None

    # -- showing ---------------------------------------------------------------
    def show(self, view: api.ShopperView, guest: bool = False, provisional: bool = False) -> None:
        self.view, self.guest = view, guest
        self.render()

    def render(self, *args) -> None:
        view = self.view
        if view is None:
            return
        self.greeting = fmt.greeting(view.display_name, tr._, view.visit) if not self.guest else tr._("Welcome!")
        if self.guest:
            self.source_text = tr._("Offline: we will add your saves to your profile later")
        elif view.source == "cache":
            self.source_text = fmt.cached_note(view.age_s, tr._, tr.language)
        else:
            self.source_text = ""
        self.ask_sharing = (not self.guest and view.sharing == api.UNDECIDED and bool(view.shopper_id))
        if view.sharing == api.UNDECIDED and view.hidden_items:
            self.sharing_note = tr.ngettext("You saved %(n)d item at other brands.",
                                            "You saved %(n)d items at other brands.", view.hidden_items) % {
                "n": view.hidden_items}
        else:
            self.sharing_note = ""
        self.notice = tr._("Tap a product's tag to save it to your wishlist")
        self._render_wishlist(view)
        self._render_offers(view)

    def _render_wishlist(self, view) -> None:
        key = (tr.language, view.wishlist)
        if key == self._wishlist_key:
            return
        self._wishlist_key = key
        language = tr.language
        items = fmt.order_wishlist(view.wishlist)
        for card, item in zip(self._cards.show(len(items)), items):
            card.gtin = item.gtin
            card.title = title_in(item, language) or tr._("Saved product")
            card.brand = item.brand_name
            card.price = fmt.price(item.price, item.currency, language)
            card.where = fmt.availability(item, tr._, tr.ngettext)
            card.where_kind = fmt.availability_kind(item)
            card.note = fmt.card_note(item, tr._)
            card.highlight = bool(item.now_on_shelf and item.available_here > 0 and not item.pending)
            image = ""
            if self.images is not None and item.image:
                image = self.images.get(item.image, lambda path, c=card, g=item.gtin: self._image_ready(c, g, path)) or ""
            card.image = image
        if not items:
            if self._empty is None:
                self._empty = KLabel(font_size="22sp", size_hint_y=None, height=96)
            self._empty.text = tr._("Your wishlist is empty. Tap a product's tag to save it.")
            self.ids.wishlist.add_widget(self._empty)

    def _image_ready(self, card, gtin: str, path) -> None:
        if path and card.parent is not None and card.gtin == gtin and self.view is not None:
            card.image = str(path)

    def _render_offers(self, view) -> None:
        key = (tr.language, view.offers)
        if key == self._offers_key:
            return
        self._offers_key = key
        offers = fmt.order_offers(view.offers)[:5]
        texts = [(tr._("For you") + ": " if o.personal else "") + title_in(o, tr.language)
                 for o in offers] or [tr._("No offers today")]
        for row, text, offer in zip(self._offer_rows.show(len(texts)), texts, offers or [None]):
            row.text, row.personal = text, bool(offer and offer.personal)

    # -- product taps and sharing --------------------------------------------------
    def saved(self, title: str, undo_token: str, already: bool = False) -> None:
        if already:
            self.show_toast(tr._("Already on your wishlist: %(title)s") % {"title": title}, "")
        else:
            self.show_toast(tr._("Saved to your wishlist: %(title)s") % {"title": title}, undo_token)

    def show_toast(self, text: str, undo_token: str = "", seconds: float = 8.0) -> None:
        self.toast, self.undo_token = text, undo_token
        if self._toast_event:
            self._toast_event.cancel()
        self._toast_event = Clock.schedule_once(lambda dt: self.hide_toast(), seconds)

    def hide_toast(self) -> None:
        self.toast = self.undo_token = ""

    def answer_sharing(self, grant: bool) -> None:
        """Hide the question at once and say what happens; the new view follows."""
        self.ask_sharing = False
        self.sharing_note = ""
        self.show_toast(tr._("Thank you. Showing your items from other brands...") if grant
                        else tr._("OK. Only this brand's items are shown here."))
        if self.view is not None:  # undecided views never held other brands' items: only the question goes
            from dataclasses import replace
            self.view = replace(self.view, sharing=api.GRANTED if grant else api.REFUSED, hidden_items=0)
        self.dispatch("on_sharing", grant)

    def undo(self) -> None:
        token = self.undo_token
        self.hide_toast()
        if token:
            self.dispatch("on_undo", token)

    # -- ending ------------------------------------------------------------------
    def clear(self) -> None:
        self.view = None
        self.guest = False
        self.greeting = self.source_text = self.notice = self.idle_warning = self.sharing_note = ""
        self.toast = self.undo_token = ""
        self.ask_sharing = False
        self._wishlist_key = self._offers_key = None
        self._cards.clear(ProductCard.blank)  # the cards stay for the next shopper, empty
        self._offer_rows.clear(lambda row: setattr(row, "text", ""))
        self.ids.wishlist.clear_widgets()
        if self._empty is not None:
            self._empty.text = ""
        if self._toast_event:
            self._toast_event.cancel()

    def on_done(self) -> None:
        pass

    def on_sharing(self, grant: bool) -> None:
        pass

    def on_undo(self, token: str) -> None:
        pass

    def on_language(self, code: str) -> None:
        pass
