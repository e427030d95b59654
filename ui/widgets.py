"""Small widgets every screen uses (layout in ui/kv/widgets.kv).

KLabel / KButton pick the OpenType script from their text (Thai is shaped as Thai), the
keypad and keyboard are plain buttons (one tap, no double-tap, no drag), and the long-press
zone is the technician's hidden entry.
"""
from __future__ import annotations

import weakref

from kivy.clock import Clock
from kivy.properties import BooleanProperty, ListProperty, NumericProperty, ObjectProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.button import Button
from kivy.uix.label import Label
from kivy.uix.screenmanager import ScreenManager
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from ui.format import LANGUAGE_NAMES, script_for
from ui.i18n import tr


# The labels that skipped rendering, by the top of the detached branch they were on (a
# hidden screen, a pooled card): a frame checks the few branch tops, not every label.
_STALE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _top(widget):
    while widget.parent is not None and widget.parent is not widget:
        widget = widget.parent
    return widget


class OnScreenOnly:
    """Label texture rendering only for labels on the window.

    A language switch changes the text of every label on every screen (the shopper's own
    language comes with each tap, and the kiosk's comes back when they leave): rendering
    them all cost about 20 ms of the tap's first frame under software GL. A label off the
    window (on a screen not shown, a pooled card, a technician tab) keeps its new text and
    renders when it is back: `refresh_stale` runs when a screen comes up (synchronously, so
    its first frame is right) and at every frame for whatever else came back."""

    def texture_update(self, *largs) -> None:
        top = _top(self)
        if top.get_root_window() is None:  # the top of a detached branch, not the window
            _STALE.setdefault(top, weakref.WeakSet()).add(self)
            return
        super().texture_update(*largs)
        self.rendered_text = self.text  # what the glass shows (the tests compare it with .text)


_POLL = None


def start_refreshing() -> None:
    """Check the stale labels at every frame (once per process, whatever apps come and go)."""
    global _POLL
    if _POLL is None:
        _POLL = Clock.schedule_interval(refresh_stale, 0)


def forget_stale() -> None:
    """The app stops: its labels need no rendering any more."""
    _STALE.clear()


def refresh_stale(dt=None) -> None:
    """Render the stale labels whose branch is back on the window. A label still off it (moved
    to another detached branch meanwhile) files itself under that branch again."""
    if not _STALE:
        return
    for top in [top for top in list(_STALE.keys()) if top.get_root_window() is not None]:
        for label in list(_STALE.pop(top, ())):
            label.texture_update()


class KLabel(OnScreenOnly, Label):
    def on_text(self, instance, text) -> None:
        self.font_script_name = script_for(text)


class KButton(OnScreenOnly, Button):
    def on_text(self, instance, text) -> None:
        self.font_script_name = script_for(text)


class KScreenManager(ScreenManager):
    """A screen manager whose screens come up with their labels rendered in their first frame."""

    def on_current(self, instance, value) -> None:
        super().on_current(instance, value)
        refresh_stale()


class LanguageBar(BoxLayout):
    """English / Tiếng Việt / Русский / ไทย, each written in its own script."""

    current = StringProperty("en")
    languages = ListProperty(["en", "vi", "ru", "th"])
    dark = BooleanProperty(True)
    __events__ = ("on_choose",)

    def on_kv_post(self, base_widget) -> None:
        self.rebuild()

    def on_languages(self, *args) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        self.clear_widgets()
        for code in self.languages:
            button = LanguageButton(text=LANGUAGE_NAMES.get(code, code), code=code, bar=self)
            button.bind(on_release=lambda b: self.dispatch("on_choose", b.code))
            self.add_widget(button)

    def on_choose(self, code: str) -> None:
        pass


class LanguageButton(KButton):
    code = StringProperty("")
    bar = ObjectProperty(None)


class Keypad(BoxLayout):
    """Digits for a PIN: 1-9, Clear, 0, Delete."""

    __events__ = ("on_digit", "on_clear", "on_delete")

    def press(self, key: str) -> None:
        if key.isdigit():
            self.dispatch("on_digit", key)
        elif key == "clear":
            self.dispatch("on_clear")
        else:
            self.dispatch("on_delete")

    def on_digit(self, digit: str) -> None:
        pass

    def on_clear(self) -> None:
        pass

    def on_delete(self) -> None:
        pass


KEYBOARDS = {
    "latin": ["1234567890-", "qwertyuiop/", "asdfghjkl:.", "zxcvbnm_@"],
    "cyrillic": ["йцукенгшщзх", "фывапролджэ", "ячсмитьбюё"],
    "thai": ["ภถุึคตจขช", "ๆไำพะัีรนยบล", "ฟหกดเ้่าสวง", "ผปแอิืทมใฝ"],
}
KEYBOARD_NAMES = {"latin": "abc", "cyrillic": "абв", "thai": "กขค"}


def key_face(char: str) -> str:
    """Thai vowel and tone marks sit on a dotted circle, as printed keyboards show them."""
    import unicodedata
    return "\u25cc" + char if unicodedata.category(char) == "Mn" else char


class TextKeyboard(BoxLayout):
    """An on-screen keyboard in three scripts; each key is one tap."""

    layout = StringProperty("latin")
    layouts = ListProperty(["latin", "cyrillic", "thai"])
    key_height = NumericProperty(56)
    __events__ = ("on_key", "on_delete", "on_clear")

    def on_kv_post(self, base_widget) -> None:
        self.rebuild()

    def on_layout(self, *args) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        rows = self.ids.get("rows")
        if rows is None:
            return
        rows.clear_widgets()
        for chars in KEYBOARDS[self.layout]:
            row = BoxLayout(spacing=4)
            for char in chars:
                key = KeyButton(text=key_face(char), char=char)
                key.bind(on_release=lambda b: self.dispatch("on_key", b.char))
                row.add_widget(key)
            rows.add_widget(row)
        switches = self.ids.switches
        switches.clear_widgets()
        for name in self.layouts:
            button = KButton(text=KEYBOARD_NAMES[name], font_size="20sp",
                             background_normal="", background_color=(0.05, 0.33, 0.58, 1) if name == self.layout
                             else (0.20, 0.24, 0.30, 1))
            button.bind(on_release=lambda b, n=name: setattr(self, "layout", n))
            switches.add_widget(button)

    def on_key(self, char: str) -> None:
        pass

    def on_delete(self) -> None:
        pass

    def on_clear(self) -> None:
        pass


class KeyButton(KButton):
    char = StringProperty("")


class LongPressZone(Widget):
    """A plain corner of the screen that opens the technician entry after a 2 s hold."""

    hold_s = NumericProperty(2.0)
    __events__ = ("on_long_press",)

    def on_touch_down(self, touch):
        if not self.collide_point(*touch.pos):
            return False
        touch.ud["long_press"] = Clock.schedule_once(lambda dt: self.dispatch("on_long_press"), self.hold_s)
        return True

    def on_touch_up(self, touch):
        event = touch.ud.get("long_press")
        if event is not None:
            event.cancel()
        return False

    def on_long_press(self) -> None:
        pass


class ProductCard(BoxLayout):
    """One wishlist item: picture, title, brand, price, where to get it."""

    title = StringProperty("")
    brand = StringProperty("")
    price = StringProperty("")
    where = StringProperty("")
    where_kind = StringProperty("none")  # here | elsewhere | online | none
    image = StringProperty("")  # a file on disk, or "" for the placeholder
    gtin = StringProperty("")
    note = StringProperty("")  # "Saved just now" for a pending add, "Now on the shelf here" for a watched item
    highlight = BooleanProperty(False)  # the note is news: a watched item now on the shelf here

    def on_kv_post(self, base_widget) -> None:
        # ids are weak: the placeholder, once off the card, would be collected without this
        self._placeholder = self.ids.placeholder.__self__

    def on_image(self, *args) -> None:
        frame, placeholder = self.ids.get("picture"), getattr(self, "_placeholder", None)
        if frame is None or placeholder is None:
            return
        if self.image and placeholder.parent is not None:
            frame.remove_widget(placeholder)
        elif not self.image and placeholder.parent is None:
            frame.add_widget(placeholder, index=len(frame.children))  # beneath the picture

    def blank(self) -> None:
        """Forget the item (texts and picture): a pooled card keeps nothing of a shopper."""
        self.title = self.brand = self.price = self.where = self.gtin = self.note = self.image = ""
        self.where_kind = "none"
        self.highlight = False


class PicturePlaceholder(Widget):
    """A product without a picture (yet): a grey tile with a bag outline."""


class WidgetPool:
    """Child widgets of one layout, made once and reused: `show(n)` puts the first n on the
    layout, in order, and returns them for the caller to fill. Building a card (kv rules,
    five labels) costs far more than changing its texts, and a changed text re-renders only
    that label's texture."""

    def __init__(self, layout, factory) -> None:
        self.layout, self.factory = layout, factory
        self.widgets: list = []

    def show(self, n: int) -> list:
        while len(self.widgets) < n:
            self.widgets.append(self.factory())
        wanted = self.widgets[:n]
        shown = self.layout.children[::-1]  # display order
        if shown == wanted:
            return wanted
        if len(shown) > n and shown[:n] == wanted:
            for widget in shown[n:]:
                self.layout.remove_widget(widget)
            return wanted
        if shown == wanted[:len(shown)]:
            extra = wanted[len(shown):]
        else:
            self.layout.clear_widgets()
            extra = wanted
        for widget in extra:
            self.layout.add_widget(widget)
        return wanted

    def clear(self, blank=None) -> None:
        self.layout.clear_widgets()
        if blank is not None:
            for widget in self.widgets:
                blank(widget)


class ClipScrollView(ScrollView):
    """A ScrollView that clips its content with the scissor test instead of the stencil buffer.

    Kivy's ScrollView is a StencilView: every frame it draws its rectangle into the stencil
    buffer and tests each pixel of its content against it. Under Mesa's software renderer that
    doubled the cost of a shopper-screen frame (about 17 ms of 35 ms, measured); a scissor is a
    plain rectangle, free for the rasteriser. The rectangle is taken in window coordinates at
    draw time, so a moved ancestor (the demo bar, a relative layout) needs no binding. There
    is no other scissor in this UI: nothing nests inside this one.
    """

    def on_kv_post(self, base_widget) -> None:  # the StencilView rule has been applied by now
        from kivy.graphics import Callback
        for group in (self.canvas.before, self.canvas.after):
            stencil = [i for i in group.children if type(i).__name__.startswith("Stencil")]
            if not stencil:
                continue
            first = group.children.index(stencil[0])
            last = group.children.index(stencil[-1])
            for instruction in group.children[first:last + 1]:
                if instruction in group.children and type(instruction).__name__ != "BindTexture":
                    group.remove(instruction)  # a Rectangle takes its own BindTexture along
            group.insert(first, Callback(self._clip_on if group is self.canvas.before else self._clip_off))

    def _clip_on(self, instruction) -> None:
        from kivy.graphics.opengl import GL_SCISSOR_TEST, glEnable, glScissor
        x, y = self.to_window(*self.pos)
        glEnable(GL_SCISSOR_TEST)
        glScissor(int(round(x)), int(round(y)), max(0, int(round(self.width))), max(0, int(round(self.height))))

    def _clip_off(self, instruction) -> None:
        from kivy.graphics.opengl import GL_SCISSOR_TEST, glDisable
        glDisable(GL_SCISSOR_TEST)


class TapOverlay(Widget):
    """The first thing a tap changes (well under 100 ms): a ring and a word, then progress."""

    text = StringProperty("")
    active = BooleanProperty(False)
    phase = NumericProperty(0.0)

    def show(self, text: str) -> None:
        self.text = text
        if not self.active:
            self.active = True
            self.phase = 0.0
            self._anim = Clock.schedule_interval(self._tick, 1 / 30)

    def hide(self) -> None:
        self.active = False
        self.text = ""
        if getattr(self, "_anim", None):
            self._anim.cancel()
            self._anim = None

    def _tick(self, dt: float) -> None:
        self.phase = (self.phase + dt) % 1.2


def translated(text: str) -> str:
    """For Python-built labels: the current language's text."""
    return tr._(text)
