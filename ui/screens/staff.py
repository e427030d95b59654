"""Staff mode: find a shopper (they tap, or staff search by name among shoppers who allowed
it) and see their wishlist with stock and location here. Every lookup is recorded by the
service as a staff_lookup event. Locks itself on a short idle timeout."""
from __future__ import annotations

from kivy.properties import BooleanProperty, StringProperty
from kivy.uix.screenmanager import Screen

from ui import format as fmt
from kiosk.catalog import title_in
from ui.i18n import tr
from ui.widgets import KButton, KLabel, ProductCard


class StaffScreen(Screen):
    staff_name = StringProperty("")
    query = StringProperty("")
    status = StringProperty("")
    shopper_name = StringProperty("")
    busy = BooleanProperty(False)
    idle_warning = StringProperty("")
    __events__ = ("on_search", "on_pick", "on_lock")

    def __init__(self, images=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.images = images
        self.view = None
        self.found: tuple = ()
        self._last = None  # the last search result, re-rendered on a language switch

    def begin(self, staff_name: str) -> None:
        self.clear()
        self.staff_name = staff_name

    # -- search ------------------------------------------------------------------
    def key(self, char: str) -> None:
        if len(self.query) < 40:
            self.query += char

    def delete(self) -> None:
        self.query = self.query[:-1]

    def search(self) -> None:
        if len(self.query.strip()) < 2:
            self.status = tr._("Type at least two letters of the name, then press Search.")
            return
        self.busy = True
        self.status = tr._("Searching...")
        self.dispatch("on_search", self.query)

    def show_results(self, result) -> None:
        self.busy = False
        self._last = result
        box = self.ids.results
        box.clear_widgets()
        self.found = result.shoppers
        if result.code == "offline":
            self.status = tr._("The hub cannot be reached. Ask the shopper to tap their card or phone instead.")
        elif result.code == "locked":
            self.status = tr._("Staff mode has ended. Tap your badge again.")
        elif result.code == "too_short":
            self.status = tr._("Type at least two letters of the name, then press Search.")
        elif not result.shoppers:
            self.status = tr._("No shopper found. Only shoppers who allowed staff search can be found.")
        else:
            self.status = tr.ngettext("%(n)d shopper found. Touch a name to see the wishlist.",
                                      "%(n)d shoppers found. Touch a name to see the wishlist.",
                                      len(result.shoppers)) % {"n": len(result.shoppers)}
        for shopper_id, display, full in result.shoppers[:4]:
            button = KButton(text=full or display, size_hint_y=None, height="64dp", background_color=(0.20, 0.24, 0.30, 1))
            button.bind(on_release=lambda b, sid=shopper_id: self.pick(sid))
            box.add_widget(button)

    def pick(self, shopper_id: str) -> None:
        self.busy = True
        self.status = tr._("Opening the wishlist...")
        self.dispatch("on_pick", shopper_id)

    # -- the shopper ---------------------------------------------------------------
    def show_shopper(self, lookup) -> None:
        self.busy = False
        if lookup.view is None:
            self.status = {"offline": tr._("The hub cannot be reached. Ask the shopper to tap their card or phone."),
                           "locked": tr._("Staff mode has ended. Tap your badge again."),
                           }.get(lookup.code, tr._("This shopper cannot be shown. Ask them to tap their card or phone."))
            return
        self.view = lookup.view
        self.render_shopper()

    def render_shopper(self) -> None:
        view = self.view
        grid = self.ids.wishlist
        grid.clear_widgets()
        if view is None:
            self.shopper_name = ""
            return
        self.shopper_name = view.display_name or tr._("Guest")
        self.status = tr._("Showing the wishlist. Stock and aisle are for this store.")
        for item in fmt.order_wishlist(view.wishlist):
            card = ProductCard(title=title_in(item, tr.language) or item.gtin, brand=item.brand_name, gtin=item.gtin,
                               price=fmt.price(item.price, item.currency, tr.language),
                               where=fmt.availability(item, tr._, tr.ngettext), where_kind=fmt.availability_kind(item))
            if self.images is not None and item.image:
                card.image = self.images.get(item.image, lambda p, c=card, g=item.gtin: self._image_ready(c, g, p)) or ""
            grid.add_widget(card)
        if not view.wishlist:
            grid.add_widget(KLabel(text=tr._("This shopper's wishlist is empty."), font_size="22sp",
                                   size_hint_y=None, height=80))

    def _image_ready(self, card, gtin, path) -> None:
        if path and card.parent is not None and card.gtin == gtin:
            card.image = str(path)

    def refresh(self, *args) -> None:
        if self._last is not None:
            self.show_results(self._last)
        if self.view is not None:
            self.render_shopper()

    def clear(self) -> None:
        self.view, self.found, self._last = None, (), None
        self.staff_name = self.query = self.status = self.shopper_name = self.idle_warning = ""
        self.busy = False
        for card in self.ids.wishlist.children:
            if isinstance(card, ProductCard):
                card.image = ""
        self.ids.wishlist.clear_widgets()
        self.ids.results.clear_widgets()

    def on_search(self, query: str) -> None:
        pass

    def on_pick(self, shopper_id: str) -> None:
        pass

    def on_lock(self) -> None:
        pass
