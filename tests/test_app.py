"""The Streamlit app through streamlit.testing's AppTest: every view, a file upload, a download's data,
a failed model load that keeps the previous model, and no cross-talk between sessions."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from conftest import garment_png_bytes  # noqa: E402
from sevis.analysis.paper import CONTROL_TOO  # noqa: E402
from sevis.core.recorder import find_se_blocks  # noqa: E402

pytestmark = pytest.mark.app

APP = str(Path(__file__).resolve().parent.parent / "app.py")
TIMEOUT = 300  # seconds per script run: the machine may be busy


def _png(color=(200, 30, 30), size=(40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def _run(at: AppTest, view: str | None = None) -> AppTest:
    if view is not None:
        at.session_state["view"] = view
    at.run(timeout=TIMEOUT)
    assert not at.exception, [e.value for e in at.exception]
    return at


def _new_app() -> AppTest:
    return _run(AppTest.from_file(APP, default_timeout=TIMEOUT))


def _charts(at: AppTest) -> list[dict]:
    return [json.loads(el.proto.spec) for el in at.get("plotly_chart")]


def _arr(value) -> np.ndarray:
    """A plotly array from a chart spec: a list, or plotly's binary form {"dtype", "bdata"}."""
    if isinstance(value, dict) and "bdata" in value:
        import base64
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


def _main_errors(at: AppTest) -> list[str]:
    return [e.value for e in at.main.error]


def _chart_titles(at: AppTest) -> list[str]:
    return [c["layout"]["title"]["text"] for c in _charts(at)]


@pytest.fixture(scope="module")
def app() -> AppTest:
    return _new_app()


def test_live_view_shows_prediction_heat_strip_and_lines(app):
    at = _run(app, "Live inference")
    assert {p.label: p.options for p in at.pills if p.key.startswith("nav_")} == {
        "Start": ["Tour"],
        "Explore": ["Live inference", "Compare", "Class × depth", "Inside a block", "Channel", "SE knock-out"],
        "Experiments": ["Architecture", "Ablations", "Architectures", "Training"], "Export": ["Export"]}
    assert any(m.value.startswith("**Prediction:") for m in at.markdown)
    titles = _chart_titles(at)
    assert any(t.startswith("Top-5 predictions") for t in titles)
    assert any(t.startswith("Excitations at every SE block") for t in titles)
    assert any(t.startswith("Excitation s over channel index") for t in titles)
    heat = next(c for c in _charts(at) if c["layout"]["title"]["text"].startswith("Excitations at every"))
    assert heat["data"][0]["type"] == "heatmap" and "channel" in heat["data"][0]["hovertemplate"]
    assert not _main_errors(at)


def test_upload_good_and_bad_files(media):
    at = _new_app()
    at.multiselect(key="samples_fashion-mnist").set_value([])
    at.file_uploader(key="uploads").set_value([
        ("garment.png", garment_png_bytes(), "image/png"),
        ("notes.txt", b"not an image", "text/plain"),
        ("empty.png", b"", "image/png"),
        ("red.png", _png(), "image/png"),
    ])
    _run(at, "Live inference")
    errors = _main_errors(at)
    assert any(e.startswith("notes.txt:") for e in errors) and any(e.startswith("empty.png:") for e in errors)
    assert len(errors) == 2  # one line per bad file; the good ones are analysed
    pick = at.selectbox(key="live_pick")
    assert pick.options == ["garment.png", "red.png"]
    pick.set_value("red.png")
    _run(at)
    assert any(t.endswith("red.png") for t in _chart_titles(at))
    # A download button's data: the CSV behind the top-5 chart of the selected image.
    csv = media.click("red_top5.csv").decode()
    frame = pd.read_csv(io.StringIO(csv))
    assert list(frame.columns) == ["image", "rank", "class", "probability"]
    assert frame["image"].eq("red.png").all() and len(frame) == 5
    assert abs(frame["probability"].sum()) <= 1.0 + 1e-6


def test_compare_view(app):
    at = _run(app, "Compare")
    items = at.multiselect(key="cmp_items")
    assert len(items.value) == 2
    titles = _chart_titles(at)
    assert titles[0] == "Excitations overlaid per SE block"
    assert titles[1].startswith("Difference of excitations")
    assert titles[2].startswith("Similarity")
    overlay = _charts(at)[0]
    assert {t["name"] for t in overlay["data"]} == set(items.value)
    # Image against a class mean.
    at.toggle(key="cmp_means").set_value(True)
    _run(at)
    options = at.multiselect(key="cmp_items").options
    assert "mean of Bag" in options
    at.multiselect(key="cmp_items").set_value([items.value[0], "mean of Bag"])
    _run(at)
    assert {t["name"] for t in _charts(at)[0]["data"]} == {items.value[0], "mean of Bag"}


def test_class_depth_view_fig6_fig7_depth(app):
    at = _run(app, "Class × depth")
    assert any("Statistics over the bundled Fashion-MNIST reference set" in c.value for c in at.caption)
    titles = _chart_titles(at)
    assert "Fig. 6" in titles[0] and "Fig. 7" in titles[1] and titles[2].startswith("How the excitations depend")
    paper = next(d.value for d in at.dataframe if "finding" in d.value.columns)
    assert len(paper) == 5 and set(paper["shows"]) <= {"yes", "no", "n/a", CONTROL_TOO}
    # Fig. 6 opens at the paper's blocks with 50 channels sampled uniformly.
    assert at.multiselect(key="cd_blocks").value == ["SE_2_3", "SE_3_4", "SE_4_6", "SE_5_1", "SE_5_2", "SE_5_3"]
    assert at.radio(key="cd_mode").value == "uniform" and at.slider(key="cd_n").value == 50
    # The depth profile draws the untrained control, and the takeaway quotes the measured numbers.
    profile = _charts(at)[2]
    control = [t for t in profile["data"] if t["name"].startswith("untrained control (")]
    assert len(control) == 4 and all(t["line"]["dash"] == "dash" for t in control)
    assert control[0]["name"].endswith("mean of 3 seeds)")  # and the seeds' range as a band behind it
    bands = [t for t in profile["data"] if t["name"] == "untrained control: range over 3 seeds"]
    assert len(bands) == 4 and all(t["fill"] == "toself" for t in bands)
    measures = at.session_state["panels"]["Class × depth"][2].data.set_index("block")
    # The takeaway quotes only blocks in Fig. 6: its first (SE_2_3), never SE_2_1.
    first = f"{measures.loc['SE_2_3', 'class_specificity']:.2f} at SE_2_3"
    assert any(first in a.value and "SE_2_1" not in a.value for a in at.info if a.value.startswith("**Takeaway"))
    fig6 = _charts(at)[0]  # by default: one heat map of class mean − all per block, a row per class
    rows = {y for t in fig6["data"] if t["type"] == "heatmap" for y in t["y"]}
    assert rows == set(at.multiselect(key="cd_classes").value)
    at.radio(key="cd_mode").set_value("all")
    at.multiselect(key="cd_blocks").set_value(["SE_5_1"])
    _run(at)
    fig6 = _charts(at)[0]
    assert [a["text"].split(":")[0] for a in fig6["layout"]["annotations"]] == ["SE_5_1"]
    heat = next(t for t in fig6["data"] if t["type"] == "heatmap")
    assert len(_arr(heat["x"])) == 256  # all channels of SE_5_1
    at.radio(key="cd_form").set_value("paper")  # the paper's own form, one click away
    _run(at)
    fig6 = _charts(at)[0]
    assert {t["name"] for t in fig6["data"]} == set(at.multiselect(key="cd_classes").value) | {"all"}
    assert {a["text"] for a in fig6["layout"]["annotations"]} == {"SE_5_1"}
    assert len(_arr(fig6["data"][0]["x"])) == 256
    at.selectbox(key="cd_fig7").set_value("Bag")
    _run(at)
    assert "Bag" in _chart_titles(at)[1]


def test_fig6_default_classes_are_the_same_in_app_and_cli(tiny_checkpoint, tmp_path):
    from sevis.cli.main import main
    from sevis.data.fashion_mnist import FASHION_MNIST_CLASSES
    from sevis.names import fig6_default_classes
    at = _run(_new_app(), "Class × depth")  # a fresh session: nobody has touched the class picker
    app_default = list(at.multiselect(key="cd_classes").value)
    out = tmp_path / "out"
    assert main(["export", "fig6", "--model", str(tiny_checkpoint), "--blocks", "SE_2_2", "--channels", "first",
                 "--n", "4", "--format", "csv", "--out", str(out)]) == 0  # no --classes: the CLI's default
    cli_default = [c for c in pd.read_csv(out / "fig6_class_means.csv")["class"].unique() if c != "all"]
    assert app_default == cli_default == fig6_default_classes(list(FASHION_MNIST_CLASSES))
    assert {y for t in _charts(at)[0]["data"] if t["type"] == "heatmap" for y in t["y"]} == set(app_default)


def test_knockout_view_and_sweep(app, embedded):
    names = [b.name for b, _ in find_se_blocks(embedded.model)]
    at = _run(app, "SE knock-out")
    assert len(at.multiselect(key="ko_blocks").value) == 1  # computed: tests/test_app_defaults.py
    assert any("knocked out:" in m.value for m in at.markdown)
    assert any(t.startswith("Prediction before and after") for t in _chart_titles(at))
    # the shipped model's sweep is stored beside it, so it shows at once (a sweep to compute waits for ko_run)
    assert not [b for b in at.button if b.key == "ko_run"]
    sweep = next(c for c in _charts(at) if c["layout"]["title"]["text"].startswith("Accuracy change"))
    assert sweep["data"][0]["x"] == names
    at.radio(key="ko_mode").set_value("mean")
    _run(at)
    assert not _main_errors(at)


def test_architecture_view(app):
    from sevis.core.se import make_divisible
    from sevis.models.params import squeeze_widths
    from sevis.models.resnet import architecture_config
    from sevis.names import DEFAULT_SPEC, EMBEDDED
    cfg = architecture_config(EMBEDDED[DEFAULT_SPEC])  # the app opens on the default model
    at = _run(app, "Architecture")
    table = at.dataframe[0].value
    widths = squeeze_widths(cfg)
    assert len(table) == len(widths) and list(table["SE block"])[:2] == ["SE_2_1", "SE_2_2"]
    # C/r exact beside the width the model uses, rounded as its config says (a multiple of se_divisor).
    rounded = next(c for c in table.columns if c.startswith("squeeze width (rounded to"))
    assert (("a whole channel" in rounded) if cfg.se_divisor == 1 else (f"multiple of {cfg.se_divisor}" in rounded))
    np.testing.assert_allclose(table["C/r exact"], table["channels C"] / cfg.reduction)
    assert list(table[rounded]) == [make_divisible(c / cfg.reduction, cfg.se_divisor) for c in table["channels C"]]
    assert list(table[rounded]) == list(widths["hidden"])
    # The per-stage table's total row has a value in every cell.
    per_stage = at.dataframe[1].value
    total = per_stage[per_stage["stage"] == "total"]
    assert len(total) == 1 and not total.isna().any(axis=None)
    assert all(str(v) not in ("None", "nan") for v in total.iloc[0])
    real = "SE parameters (real)"  # human column names (plots.readable_table)
    assert total[real].iloc[0] == per_stage[real].iloc[:-1].sum()
    titles = _chart_titles(at)
    assert "SE's extra parameters per stage" in titles
    assert "SE's extra parameters against the reduction ratio r" in titles
    assert [m.label for m in at.metric][:2] == ["Parameters", "SE blocks"]


def test_export_view_offers_teaching_pack(app, media):
    _run(app, "Live inference")
    at = _run(app, "Export")
    assert "Live inference" in at.selectbox(key="ex_view").options
    labels = [b.proto.label for b in at.get("download_button")]
    assert not any(label.startswith("⬇ Download the teaching pack") for label in labels)  # built on request
    assert {"HTML", "CSV", "JSON"} <= set(labels)
    # A panel's CSV/JSON are built when clicked (callables), not on every rerun: nothing reached the media store.
    assert not any(name.endswith((".csv", ".json")) for name in media)
    at.multiselect(key="ex_formats").set_value(["html", "csv"])
    at.button(key="ex_build").click()
    _run(at)
    labels = [b.proto.label for b in at.get("download_button")]
    assert any(label.startswith("⬇ Download the teaching pack") for label in labels)
    pack = media["sevis_Live_inference_teaching_pack.zip"]
    names = zipfile.ZipFile(io.BytesIO(pack)).namelist()
    assert any(n.endswith("README.md") for n in names) and any(n.endswith("_heat_strip.csv") for n in names)


def test_live_teaching_pack_holds_the_input_images(app):
    import zipfile

    from sevis.figures import export as E
    at = _run(app, "Live inference")
    panels = at.session_state["panels"]["Live inference"]  # what the Export view packs
    at = _run(at, "Export")
    at.selectbox(key="ex_view").set_value("Live inference")
    _run(at)
    with zipfile.ZipFile(io.BytesIO(E.teaching_pack(panels, "Live inference", ["csv"]))) as zf:
        files = {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}
    stems = [p.key.removesuffix("_top5") for p in panels if p.key.endswith("_top5")]  # every image in the view
    assert len(stems) == 2  # the sidebar's two sample images: the pack holds what `sevis export live` writes
    assert sorted(n for n in files if n.endswith(".png")) == sorted(f"{s}_{k}.png" for s in stems
                                                                      for k in ("input", "model_input"))
    stem = stems[0]
    given = Image.open(io.BytesIO(files[f"{stem}_input.png"])).convert("RGB")
    seen = Image.open(io.BytesIO(files[f"{stem}_model_input.png"]))
    from sevis import load_model
    from sevis.names import DEFAULT_SPEC
    x = load_model(DEFAULT_SPEC, pretrained=False).preprocess(given)  # the app's model's preprocessing
    factor = seen.size[0] // x.shape[-1]  # enlarged with hard pixels (nearest) to at least 256 px, for slides
    assert min(seen.size) >= 256 and seen.size == (x.shape[-1] * factor, x.shape[-2] * factor)
    assert len(seen.getbands()) == x.shape[0]


def test_failed_model_load_keeps_previous_model(app):
    at = _new_app()
    at.selectbox(key="model_kind").set_value("timm ImageNet model")
    _run(at)
    at.selectbox(key="timm_name").set_value("other…")
    _run(at)
    at.text_input(key="timm_other").set_value("no_such_model_xyz")
    _run(at, "Live inference")
    assert any("no_such_model_xyz" in e.value for e in at.sidebar.error)
    assert any("Still showing" in c.value for c in at.sidebar.caption)
    assert any(t.startswith("Excitations at every SE block") for t in _chart_titles(at))  # the page still works


def test_sessions_do_not_share_uploads():
    a, b = _new_app(), _new_app()
    a.file_uploader(key="uploads").set_value([("only_in_a.png", _png((10, 200, 10)), "image/png")])
    _run(a)
    _run(b)
    # The upload replaces a's sample images; b keeps its samples and never sees a's upload.
    assert any(t.endswith("only_in_a.png") for t in _chart_titles(a))
    assert a.multiselect(key="samples_fashion-mnist").value == []
    assert "only_in_a.png" not in b.selectbox(key="live_pick").options
    assert not any("only_in_a.png" in t for t in _chart_titles(b))


def test_inside_a_block_view(app, media, embedded):
    se = [b for b, _ in find_se_blocks(embedded.model)]
    at = _run(app, "Inside a block")
    blocks = at.selectbox(key="in_block").options
    assert blocks == [b.name for b in se]  # from the recorder's block list
    at.selectbox(key="in_block").set_value(blocks[-2])
    _run(at)
    chain = next(m.value for m in at.markdown if m.value.startswith("**U ("))
    c, h = se[-2].channels, se[-2].squeeze_channels
    assert f"→ z = squeeze(U) ({c})" in chain and f"δ(W1·z) ({h})" in chain and f"U·s ({c}×" in chain
    titles = _chart_titles(at)
    assert any(t.startswith(f"Inside {blocks[-2]}") for t in titles)
    assert any(t.startswith("Feature maps before (U) and after (U·s)") for t in titles)
    assert any(i.value.startswith(f"**Takeaway.** At {blocks[-2]},") for i in at.info)
    chain_csv = next(name for name in media.deferred if name.endswith(f"_{blocks[-2]}_chain.csv"))
    frame = pd.read_csv(io.StringIO(media.click(chain_csv).decode()))
    assert set(frame["quantity"]) == {"z", "hidden", "s"} and (frame["quantity"] == "s").sum() == c
    assert not _main_errors(at)


def test_channel_view_picker_and_click(app, media):
    at = _run(app, "Channel")
    at.selectbox(key="ch_block").set_value("SE_5_1")
    _run(at)
    at.number_input(key="ch_channel").set_value(7)
    _run(at)
    titles = _chart_titles(at)
    assert "Excitation s of channel 7 at SE_5_1, per class" in titles
    assert any(t.startswith("The 9 reference images that excite channel 7 of SE_5_1 most") for t in titles)
    assert "Channel 7 of SE_5_1: U and U·s" in titles and any(t.startswith("Prediction for") for t in titles)
    gallery = pd.read_csv(io.StringIO(media.click("SE_5_1_ch7_gallery.csv").decode()))
    most = gallery[gallery["group"] == "most exciting"]["s"].to_numpy()
    least = gallery[gallery["group"] == "least exciting"]["s"].to_numpy()
    assert len(most) == len(least) == 9 and most.min() >= least.max() and (np.diff(most) <= 0).all()
    assert any(i.value.startswith("**Takeaway.** Channel 7 of SE_5_1 is excited most by") for i in at.info)
    # A click on a heat-strip cell in the Live view: Streamlit's selection callback opens the channel.
    import streamlit as st

    from sevis.app.common import open_channel
    state = {"chart_x": {"selection": {"points": [{"customdata": ["SE_4_2", 5], "x": 5, "y": "SE_4_2"}]}}}
    calls = {}

    class FakeState(dict):
        def __setitem__(self, k, v):
            calls[k] = v
            super().__setitem__(k, v)

    fake = FakeState(state)
    original = st.session_state
    try:
        st.session_state = fake
        open_channel("chart_x", ["SE_4_1", "SE_4_2"])
    finally:
        st.session_state = original
    assert calls == {"ch_block": "SE_4_2", "ch_channel": 5, "view": "Channel"}
    # What the callback sets is what the view then shows.
    for k, v in calls.items():
        at.session_state[k] = v
    _run(at)
    assert "Excitation s of channel 5 at SE_4_2, per class" in _chart_titles(at)


def test_random_weights_banner_and_views_that_need_training():
    at = _new_app()
    at.selectbox(key="model_kind").set_value("timm ImageNet model")
    _run(at)
    at.selectbox(key="timm_name").set_value("legacy_seresnet18")
    at.checkbox(key="timm_random").check()
    _run(at, "SE knock-out")
    banner = [w.value for w in at.warning if "has random weights" in w.value]
    assert banner and "legacy_seresnet18" in banner[0]
    assert any("sweep would measure nothing" in i.value for i in at.info)
    assert not any(b.proto.label.startswith("Run the sweep") for b in at.button)
    # Class × depth with the six sample photos, one per 'class': too few images, so no index is shown.
    _run(at, "Class × depth")
    assert any("at least two classes with 5 or more images" in w.value for w in at.warning)
    assert not any("How the excitations depend" in t for t in _chart_titles(at))
    assert any("has random weights" in w.value for w in at.warning)  # the banner is on every view


def test_a_labelled_folder_in_the_sidebar_feeds_class_depth(tmp_path, embedded, monkeypatch):
    # A folder with one sub-folder per class, set once in the sidebar, is what Class × depth measures; below
    # 5 images in a class it explains what is needed instead of showing an index. The server shares tmp_path
    # (SEVIS_DATA_DIRS); names relative to it work.
    ref = embedded.reference_set()
    for folder, bags in (("six", 6), ("few", 2)):
        for k, cls in enumerate(("Trouser", "Bag")):
            d = tmp_path / folder / cls
            d.mkdir(parents=True)
            for i, a in enumerate(ref.images[ref.labels == ref.classes.index(cls)][:6 if cls == "Trouser" else bags]):
                Image.fromarray(a, "L").save(d / f"{i}.png")
    monkeypatch.setenv("SEVIS_DATA_DIRS", str(tmp_path))
    at = _new_app()
    at.text_input(key="ref_folder").set_value(str(tmp_path / "six"))
    _run(at, "Class × depth")
    assert any(f"folder {tmp_path / 'six'}" in c.value for c in at.caption)
    assert any("How the excitations depend" in t for t in _chart_titles(at))
    at.text_input(key="ref_folder").set_value("few")  # Bag has 2 images there
    _run(at, "Class × depth")
    assert any("Bag (2)" in w.value for w in at.warning)
    assert not any("How the excitations depend" in t for t in _chart_titles(at))
