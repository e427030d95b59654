"""Driver for the kill -9 test: taps and syncs forever, printing `C <event id>` for every
event the kiosk confirmed (the result exists only after the event is durable), after an
`R` line once it is up."""
import random
import sys

from kiosk.config import load_config
from kiosk.app import build_service
from tests.taps import card, product


def main(data_dir: str, hub_url: str, seed: int) -> None:
    rng = random.Random(seed)
    config = load_config(data_dir + "/none.toml", environ={}, overrides={
        "data_dir": data_dir, "hub_url": hub_url, "sync_interval_s": 0.05, "batch_size": 20,
        "backoff_base_s": 0.1, "backoff_cap_s": 0.5})
    service = build_service(config, with_reader=False)
    service.sync.start()
    out = sys.stdout
    out.write("R\n")  # up: the test now kills at a random moment among taps and syncs
    out.flush()
    while True:
        shown = service.handle_tag(card(rng.randrange(20)))
        if getattr(shown, "event_id", ""):
            out.write(f"C {shown.event_id}\n")
        for _ in range(rng.randint(1, 4)):
            saved = service.handle_tag(product(rng.randrange(150))[1])
            if getattr(saved, "undo_token", ""):
                out.write(f"C {saved.undo_token}\n")
                if rng.random() < 0.2:
                    undone = service.undo(saved.undo_token)
                    pending = service.outbox.pending_for("type", "wishlist_remove")
                    if pending and getattr(undone, "view", None) is not None:
                        out.write(f"C {pending[-1]['event_id']}\n")
        out.flush()
        service.end_session()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
