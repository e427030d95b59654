"""No tokens, names or wishlists in the logs, even at DEBUG, through a whole visit: online
check-in, product save, sharing answer, an offline visit and the sync that follows."""
import logging

from drivers.simulated import SimulatedReader
from kiosk.app import build_service
from hub import demo
from hub.app import HubSettings
from hub.server import EmbeddedHub
from tests.taps import card, product


def test_a_visit_leaves_no_personal_data_in_the_logs(caplog, hub_db, enrolled, hub):
    caplog.set_level(logging.DEBUG)
    service = build_service(enrolled, reader=SimulatedReader())
    try:
        shown = service.handle_tag(card(4))  # James: sharing undecided, so the kiosk asks
        service.handle_tag(product(2)[1])
        service.set_sharing(True)
        service.end_session()
        service.sync_now()
        port = hub.port
        hub.stop()
        service.handle_tag(card(4))
        service.handle_tag(product(5)[1])
        service.end_session()
        with EmbeddedHub(HubSettings(db_path=hub_db), port=port):
            service.sync_now()
    finally:
        service.stop()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert caplog.records, "nothing was logged at all: the test would prove nothing"
    secrets = [demo.token_for(4), shown.view.display_name, shown.view.session]
    secrets += [item.title for item in shown.view.wishlist] + [demo.products()[2]["title"]]
    leaked = [s for s in secrets if s and s in text]
    assert not leaked, f"personal data in the logs: {leaked}"
