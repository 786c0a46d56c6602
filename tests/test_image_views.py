"""The image views (Live, Compare, Inside a block, Channel) under the view protocol: the app's first open asks exactly
one of the requests `sevis prepare` stores (the sidebar's preselected sample images, by the same names and pixels),
so a shipped model's first open reads the prepared file; bad requests give one message."""
from __future__ import annotations

from pathlib import Path

import pytest

from sevis.analysis.images import default_sample_images, default_sample_names, sample_images
from sevis.errors import SevisError
from sevis.views.base import ViewRequest
from sevis.views.registry import VIEWS, compute_view

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 600
IMAGE_VIEWS = ("live", "compare", "inside", "channel")


def test_default_samples_are_the_first_trouser_and_bag(embedded):
    names = default_sample_names(embedded)
    assert [n.split(" (")[0] for n in names] == ["Trouser", "Bag"]
    images = default_sample_images(embedded)
    assert [im.name for im in images] == names
    samples = sample_images(embedded)
    assert all(im.image.size == (28, 28) and samples[im.name] for im in images)


@pytest.mark.app
@pytest.mark.parametrize("slug", IMAGE_VIEWS)
def test_the_apps_first_open_asks_a_prepared_request(slug, embedded, monkeypatch):
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest

    import sevis.views.registry as registry
    asked = []
    real = registry.compute_view

    def spy(loaded, view, request=None, progress=None, prepared=True):
        asked.append((view, request))
        return real(loaded, view, request, progress, prepared)

    monkeypatch.setattr(registry, "compute_view", spy)
    from sevis.app.common import _shared_result
    _shared_result.clear()  # a first open: no earlier test's session left the shared result in the process's cache
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.session_state["view"] = VIEWS[slug].TITLE
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    mine = [r for v, r in asked if v == slug]
    assert mine, f"the app's {slug} view computed nothing"
    prepared = VIEWS[slug].prepared_requests(embedded)
    assert mine[-1].key() in {r.key() for r in prepared}
    assert mine[-1].images and [im.name for im in mine[-1].images] == default_sample_names(embedded)[
        :len(mine[-1].images)]


def test_bad_requests_give_one_message(embedded):
    two = tuple(default_sample_images(embedded))
    cases = [("live", ViewRequest(), "needs one or more images"),
             ("live", ViewRequest(images=two, blocks=("SE_9_9",)), "no SE block named SE_9_9"),
             ("compare", ViewRequest(images=two[:1]), "two or more images or class means"),
             ("compare", ViewRequest(images=two[:1], classes=("Unicorn",)), "unknown class"),
             ("inside", ViewRequest(images=two), "exactly one image, 2 given"),
             ("inside", ViewRequest(images=two[:1], block="SE_9_9"), "no SE block named 'SE_9_9'"),
             ("inside", ViewRequest(images=two[:1], n=99), "1 to 8 channels each side"),
             ("inside", ViewRequest(images=two[:1], channel=3), "Channel view"),
             ("channel", ViewRequest(images=two), "at most one image")]
    for slug, request, message in cases:
        with pytest.raises(SevisError, match=message):
            compute_view(embedded, slug, request, prepared=False)


def test_compare_an_image_with_class_means(embedded):
    """An image against the mean of its class and of every image: the overlay names each, the takeaway the pair."""
    from sevis.analysis.reference import class_mean_excitations, reference_statistics
    image = default_sample_images(embedded)[1]  # the Bag
    result = compute_view(embedded, "compare", ViewRequest(images=(image,), classes=("Bag", "all")), prepared=False)
    overlay = result.panel("compare_overlay").data
    assert list(dict.fromkeys(overlay["image"])) == [image.name, "mean of Bag", "mean of all images"]
    stats = reference_statistics(embedded).stats
    block = overlay["block"].iloc[0]
    bag = overlay[(overlay["image"] == "mean of Bag") & (overlay["block"] == block)]["s"].to_numpy()
    assert bag == pytest.approx(class_mean_excitations(stats, "Bag")[block])
    assert result.takeaway.startswith(f"{image.name} vs mean of Bag: ")
    assert result.numbers["items"] == 3 and "The difference plot shows the first two" in result.notes[-1]
