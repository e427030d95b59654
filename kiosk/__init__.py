"""The kiosk core: identity, hub client, cache, outbox, sync, service, CLI.

Pure Python: no Kivy, no hardware libraries at import time.
"""
__version__ = "0.1.0"
