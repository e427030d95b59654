"""Product images: fetched once from the hub on loopback, kept on disk, found again after a
restart while the hub is away, from memory only (what the UI thread is allowed to ask)."""
from kiosk.app import build_service
from hub import demo
from kiosk.images import image_kind


def test_images_are_kept_for_offline_use_and_found_from_memory(hub, enrolled):
    gtin = demo.products()[0]["gtin"]
    path = f"/v1/images/{gtin}.png"
    service = build_service(enrolled, with_reader=False)
    try:
        assert service.image_file(path) is None  # not on disk yet: the UI shows a placeholder
        file = service.fetch_image(path)
        assert file and image_kind(file.read_bytes()) == ".png"
        assert service.image_file(path) == file
        assert service.fetch_image("/v1/images/00000000000000.png") is None  # the hub has none
    finally:
        service.stop()
    hub.stop()
    again = build_service(enrolled, with_reader=False)
    try:
        assert again.image_file(path) is None  # nothing touched the disk from this thread yet
        again.images.warm()  # the tap worker does this at start
        assert again.image_file(path) == file  # offline, from memory
        assert again.fetch_image(path) == file
    finally:
        again.stop()
