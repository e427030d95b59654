"""The Kivy kiosk UI. Talks to the core only through `kiosk.service.KioskService`:
everything it shows is a result dataclass, everything it does is a service call."""
