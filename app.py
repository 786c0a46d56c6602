"""sevis app: see what Squeeze-and-Excitation blocks do inside a trained network.

    streamlit run app.py

Widgets and layout only: every computation lives in sevis (views, figures, export) and is tested without
Streamlit. Models are loaded once per spec (st.cache_resource, shared by all sessions); reference-set
statistics and sweeps are cached with st.cache_data.
"""
from __future__ import annotations

import hashlib
import tempfile
from collections import OrderedDict
from pathlib import Path

import streamlit as st
from PIL import Image

from sevis import DatasetError, SevisError, find_se_blocks, load_model
from sevis import export as E
from sevis import figures as F
from sevis import views as V
from sevis.zoo import EMBEDDED, TIMM_SE_MODELS, TORCHVISION_SE_MODELS

st.set_page_config(page_title="sevis: inside Squeeze-and-Excitation", page_icon="🔬", layout="wide")

VIEWS = ["Live inference", "Compare", "Class × depth", "SE knock-out", "Architecture", "Export"]
MODEL_KINDS = OrderedDict([
    ("Our SE-ResNet (Fashion-MNIST)", "embedded"),
    ("Its plain twin, no SE (Fashion-MNIST)", "embedded-plain"),
    ("timm ImageNet model", "timm"),
    ("torchvision ImageNet model", "torchvision"),
    ("Uploaded checkpoint", "checkpoint"),
])
CHECKPOINT_ARCHS = ["sevis:fmnist_se_resnet", "sevis:se_resnet50", "sevis:se_resnet18", "timm:seresnet50",
                    "timm:legacy_seresnet50", "timm:efficientnet_b0", "torchvision:efficientnet_b0",
                    "torchvision:mobilenet_v3_large", "(from its model card)"]
UPLOAD_DIR = Path(tempfile.gettempdir()) / "sevis_uploaded_checkpoints"
PAGE_CSS = """<style>
[data-testid="stMainBlockContainer"] {padding: 1.5rem 2rem 2rem 2rem; max-width: 100%;}
[data-testid="stMainBlockContainer"] h2 {padding-top: 0;}
[data-testid="stSidebarHeader"] {display: none;}
</style>"""
CHART_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


# ---------------------------------------------------------------------------------------- cached work
@st.cache_resource(show_spinner="Loading the model…", max_entries=6)
def get_model(spec: str, pretrained: bool = True, arch: str | None = None):
    return load_model(spec, pretrained=pretrained, arch=arch)


@st.cache_data(show_spinner=False, max_entries=8)
def get_samples(spec: str, pretrained: bool, arch: str | None):
    return V.sample_images(get_model(spec, pretrained, arch))


@st.cache_data(show_spinner=False, max_entries=32)
def get_results(spec: str, pretrained: bool, arch: str | None, keys: tuple, _images: list):
    return V.analyse_images(get_model(spec, pretrained, arch), _images)


@st.cache_data(show_spinner=False, max_entries=16)
def get_reference(spec: str, pretrained: bool, arch: str | None, folder: str):
    loaded = get_model(spec, pretrained, arch)
    bar = st.progress(0.0, text="Computing excitation statistics over the reference set…")
    ref = V.reference_statistics(loaded, folder or None,
                                 progress=lambda f: bar.progress(f, text=f"Reference statistics: {f:.0%}"))
    bar.empty()
    return ref


@st.cache_data(show_spinner=False, max_entries=16)
def get_sweep(spec: str, pretrained: bool, arch: str | None, folder: str, mode: str):
    loaded = get_model(spec, pretrained, arch)
    means = None
    if mode == "mean":
        means = V.class_mean_excitations(get_reference(spec, pretrained, arch, folder).stats, "all")
    batches, source = V.reference_batches(loaded, folder or None)
    total = sum(len(y) for _, y in batches)
    bar = st.progress(0.0, text="Knocking out one SE block at a time…")
    panel = V.knockout_sweep_panel(loaded, batches, mode, means, source,
                                   progress=lambda f: bar.progress(f, text=f"Knock-out sweep: {f:.0%}"), total=total)
    bar.empty()
    return panel


@st.cache_data(show_spinner="Counting parameters…", max_entries=8)
def get_architecture(spec: str, pretrained: bool, arch: str | None):
    return V.architecture_panels(get_model(spec, pretrained, arch))


# ---------------------------------------------------------------------------------------- helpers
def _hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def show_panel(panel: F.Panel, key: str) -> None:
    """A figure with its download menu (PNG/SVG/PDF rendered on click; HTML; the data as CSV/JSON)."""
    st.plotly_chart(panel.figure, key=f"chart_{key}", theme=None, config=CHART_CONFIG)
    download_menu(panel, key)


def download_menu(panel: F.Panel, key: str) -> None:
    with st.popover("⬇ Download", key=f"dl_{key}"):
        st.caption(panel.caption)
        cols = st.columns(3)
        if static_ok():
            for col, fmt in zip(cols, E.IMAGE_FORMATS):
                col.download_button(fmt.upper(), data=lambda p=panel, f=fmt: E.panel_bytes(p, f),
                                    file_name=E.panel_filename(panel, fmt), mime=E.MIME[fmt],
                                    key=f"dl_{key}_{fmt}", on_click="ignore")
        else:
            st.caption("PNG/SVG/PDF: " + E.NO_CHROME)
        cols = st.columns(3)
        cols[0].download_button("HTML", data=lambda p=panel: E.panel_bytes(p, "html"),
                                file_name=E.panel_filename(panel, "html"), mime=E.MIME["html"],
                                key=f"dl_{key}_html", on_click="ignore")
        cols[1].download_button("CSV", data=E.frame_to_csv(panel.data), file_name=E.panel_filename(panel, "csv"),
                                mime=E.MIME["csv"], key=f"dl_{key}_csv", on_click="ignore")
        cols[2].download_button("JSON", data=E.frame_to_json(panel.data), file_name=E.panel_filename(panel, "json"),
                                mime=E.MIME["json"], key=f"dl_{key}_json", on_click="ignore")


@st.cache_data(show_spinner=False, ttl=300)
def static_ok() -> bool:
    return E.static_export_available()


def remember(view: str, panels: list[F.Panel]) -> None:
    """Keep the panels a view last showed, for the Export tab's teaching pack."""
    st.session_state.setdefault("panels", {})[view] = panels
    if panels:
        st.session_state["last_view"] = view


def display_image(img: Image.Image, size: int = 160) -> Image.Image:
    """Small images (28 px garments) are enlarged with hard pixels so students see what the model saw."""
    if max(img.size) < size:
        factor = max(1, size // max(img.size))
        return img.resize((img.width * factor, img.height * factor), Image.NEAREST)
    return img


def block_picker(label: str, names: list[str], default: list[str], key: str) -> list[str]:
    picked = st.multiselect(label, names, default=[d for d in default if d in names], key=key)
    return [n for n in names if n in picked]  # depth order


# ---------------------------------------------------------------------------------------- sidebar
def model_picker():
    """Return (loaded model, (spec, pretrained, arch)); a failed load keeps the previous model."""
    sb = st.sidebar
    sb.header("Model")
    label = sb.selectbox("Network", list(MODEL_KINDS), key="model_kind")
    kind = MODEL_KINDS[label]
    spec, pretrained, arch = kind, True, None
    if kind in ("timm", "torchvision"):
        names = list(TIMM_SE_MODELS if kind == "timm" else TORCHVISION_SE_MODELS)
        name = sb.selectbox(f"{kind} model", names + ["other…"], key=f"{kind}_name")
        if name == "other…":
            name = sb.text_input(f"{kind} model name", key=f"{kind}_other").strip()
        pretrained = not sb.checkbox("Random weights (no download; for architecture views)", key=f"{kind}_random")
        spec = f"{kind}:{name}" if name else ""
    elif kind == "checkpoint":
        up = sb.file_uploader("Weights file (.safetensors, .pt, .pth)", type=["safetensors", "pt", "pth"],
                              key="ckpt_file")
        arch_label = sb.selectbox("Architecture", CHECKPOINT_ARCHS, key="ckpt_arch")
        arch = None if arch_label.startswith("(") else arch_label
        spec = ""
        if up is not None:
            data = up.getvalue()
            suffix = Path(up.name).suffix.lower() if Path(up.name).suffix.lower() in (".safetensors", ".pt", ".pth") else ".pt"
            UPLOAD_DIR.mkdir(parents=True, exist_ok=True)
            path = UPLOAD_DIR / f"{_hash(data)}{suffix}"
            if not path.exists():
                path.write_bytes(data)
            spec = str(path)
    requested = (spec, pretrained, arch)
    loaded, error = None, None
    if spec:
        try:
            loaded = get_model(*requested)
            st.session_state["model_ok"] = requested
        except SevisError as e:
            error = str(e)
        except Exception as e:  # a broken third-party model must not take the app down
            error = f"{spec} could not be loaded ({type(e).__name__}: {e})"
    else:
        error = "choose a model name or upload a weights file" if kind != "checkpoint" else \
            "upload a weights file to use it (the previous model stays active meanwhile)"
    if loaded is None:
        (sb.info if not spec else sb.error)(error)
        previous = st.session_state.get("model_ok")
        if previous and previous != requested:
            loaded, requested = get_model(*previous), previous
            sb.caption(f"Still showing **{loaded.name}**.")
        elif kind in EMBEDDED or previous is None:
            fallback = (kind if kind in EMBEDDED else "embedded", False, None)
            loaded, requested = get_model(*fallback), fallback
            sb.warning("Showing the same architecture with untrained (random) weights, so every view still works; "
                       "its predictions are meaningless.")
    facts = V.model_summary(loaded)
    sb.caption(f"**{facts['name']}** · {facts['parameters']:,} parameters · {facts['se_blocks']} SE blocks "
               f"({facts['se_parameters']:,} parameters) · {facts['classes']} classes"
               + ("" if requested[1] else " · random weights"))
    return loaded, requested


def image_picker(loaded, key):
    """Sidebar uploads and sample images; return (named images, error lines)."""
    sb = st.sidebar
    sb.header("Images")
    uploads = sb.file_uploader("Upload images", accept_multiple_files=True, key="uploads",
                               help="PNG, JPEG, GIF, WebP, TIFF, BMP… one or many at once.")
    samples = get_samples(*key)
    if loaded.dataset == "fashion-mnist":
        preferred = [n for n in samples if n.startswith(("Trouser", "Bag"))][:2]
    else:
        preferred = list(samples)[:2]
    picked = sb.multiselect("Sample images", list(samples), default=preferred if not uploads else [],
                            key=f"samples_{loaded.dataset}",
                            help="Reference-set garments for Fashion-MNIST models; photos shipped with "
                                 "scikit-image / scikit-learn for ImageNet models.")
    files = [(f.name, f.getvalue()) for f in (uploads or [])] + [(n, samples[n]) for n in picked]
    return V.decode_uploads(files)


def results_for(key, images):
    if not images:
        return []
    ids = tuple((im.name, im.image.size, _hash(im.image.tobytes())) for im in images)
    return get_results(*key, ids, images)


# ---------------------------------------------------------------------------------------- views
def view_live(loaded, key, images, errors, results, blocks):
    if not images:
        st.info("Upload one or more images in the sidebar, or pick sample images.")
        return []
    if len(results) > 1:
        cols = st.columns(8)
        for i, r in enumerate(results):
            cols[i % 8].image(display_image(r.image, 96), caption=f"{r.name} → {r.topk[0][0]} ({r.topk[0][1]:.0%})",
                              width="stretch")
        names = [r.name for r in results]
        new = [n for n in names if n not in st.session_state.get("live_seen", [])]
        if new and st.session_state.get("live_seen"):
            st.session_state["live_pick"] = new[0]  # a fresh upload is what the student wants to see
        st.session_state["live_seen"] = names
        pick = st.selectbox("Look closer at", names, key="live_pick")
        r = next(x for x in results if x.name == pick)
    else:
        r = results[0]
    panels = V.live_panels(r)
    left, right = st.columns([1, 3])
    with left:
        st.image(display_image(r.image), caption=r.name, width=180)
        st.markdown(f"**Prediction: {r.topk[0][0]}** ({r.topk[0][1]:.1%})")
    with right:
        show_panel(panels[0], "live_top5")
    if len(panels) > 1:
        show_panel(panels[1], "live_heat")
    else:
        st.info("This model has no SE blocks, so there are no excitations to show.")
    if len(panels) > 2:
        names = [b.name for b in blocks]
        sel = block_picker("Blocks for the line plots", names, names if len(names) <= 8 else V.paper_blocks(blocks),
                           "live_blocks") if len(names) > 8 else names
        panels[2] = V.live_panels(r, sel)[2] if sel != names else panels[2]
        show_panel(panels[2], "live_lines")
    return panels


def view_compare(loaded, key, images, results, blocks):
    if not blocks:
        st.info("This model has no SE blocks: nothing to compare.")
        return []
    use_means = st.toggle("Also offer class means from the reference set", value=len(results) < 2, key="cmp_means")
    options = [r.name for r in results]
    ref = None
    if use_means:
        ref = get_reference(*key, st.session_state.get("ref_folder", ""))
        options += [f"mean of {c}" for c in ref.stats.classes] + ["mean of all images"]
    if len(options) < 2:
        st.info("Pick two or more images (sidebar), or turn on class means.")
        return []
    default = options[:2]
    if len(results) == 1 and ref is not None:
        top = results[0].topk[0][0]
        default = [results[0].name, f"mean of {top}" if f"mean of {top}" in options else options[1]]
    picked = st.multiselect("Compare", options, default=default, key="cmp_items")
    if len(picked) < 2:
        st.info("Choose at least two items to compare.")
        return []
    items = OrderedDict()
    by_name = {r.name: r for r in results}
    for p in picked:
        if p in by_name:
            items[p] = by_name[p].excitations
        else:
            cls = p.removeprefix("mean of ")
            items[p] = V.class_mean_excitations(ref.stats, "all" if cls == "all images" else cls)
    names = [b.name for b in blocks]
    sel = block_picker("Blocks", names, names if len(names) <= 8 else V.paper_blocks(blocks), "cmp_blocks")
    panels = V.compare_panels(items, sel or names)
    if len(picked) > 2:
        st.caption(f"The difference plot shows the first two: {picked[0]} and {picked[1]}.")
    for i, p in enumerate(panels):
        show_panel(p, f"cmp_{i}")
    return panels


def view_class_depth(loaded, key, blocks):
    if not blocks:
        st.info("This model has no SE blocks.")
        return []
    folder = st.text_input("Reference images (optional): a folder with one sub-folder per class",
                           key="ref_folder", placeholder="empty: the bundled reference set" if loaded.dataset ==
                           "fashion-mnist" else "empty: the sample photos, one per 'class'")
    try:
        ref = get_reference(*key, folder.strip())
    except SevisError as e:
        st.error(str(e))
        return []
    acc = f" · accuracy {ref.accuracy:.1%}" if ref.accuracy is not None else ""
    st.caption(f"Statistics over {ref.source}{acc}.")
    classes = ref.stats.classes
    default_classes = [c for c in ("Trouser", "Sneaker", "Bag", "Coat") if c in classes] or classes[:4]
    names = [b.name for b in blocks]
    c1, c2 = st.columns([3, 2])
    picked = c1.multiselect("Classes", classes, default=default_classes, key="cd_classes")
    sel = block_picker("Blocks (the paper: the last of each stage and all of the last stage)", names,
                       V.paper_blocks(blocks), "cd_blocks")
    mode = c2.radio("Channels", ["all", "first", "uniform"], horizontal=True, key="cd_mode",
                    format_func={"all": "all", "first": "first N", "uniform": "N sampled uniformly"}.get,
                    index=2 if max(b.channels for b in blocks) > 64 else 0)
    n = c2.slider("N", 5, max(b.channels for b in blocks), min(50, max(b.channels for b in blocks)), key="cd_n",
                  disabled=mode == "all")
    f7 = st.selectbox("Fig. 7 class", picked or classes, key="cd_fig7")
    if not sel:
        st.info("Choose at least one block.")
        return []
    panels = V.class_depth_panels(ref, picked, sel, mode, n, 0, f7)
    for i, p in enumerate(panels):
        show_panel(p, f"cd_{i}")
    return panels


def view_knockout(loaded, key, images, blocks):
    if not blocks:
        st.info("This model has no SE blocks to knock out.")
        return []
    names = [b.name for b in blocks]
    last_stage = [b.name for b in blocks if b.stage == blocks[-1].stage] if blocks[-1].stage is not None else names[-1:]
    c1, c2 = st.columns([3, 2])
    picked = c1.multiselect("Knock out these SE blocks", names, default=last_stage, key="ko_blocks")
    mode = c2.radio("Replace s by", ["identity", "mean"], horizontal=True, key="ko_mode",
                    format_func={"identity": "1 (identity)", "mean": "reference-set mean"}.get)
    folder = st.session_state.get("ref_folder", "").strip()
    means = None
    if mode == "mean":
        try:
            means = V.class_mean_excitations(get_reference(*key, folder).stats, "all")
        except SevisError as e:
            st.error(str(e))
            return []
    panels = []
    if images:
        img_name = st.selectbox("Image", [im.name for im in images], key="ko_image")
        image = next(im for im in images if im.name == img_name)
        res = V.knockout_image(loaded, image, [n for n in names if n in picked], mode, means)
        b, a = res.before[0], res.after[0]
        verdict = "**the prediction changes**" if res.changed else "the prediction stays the same"
        st.markdown(f"Original: **{b[0]}** ({b[1]:.1%}) → knocked out: **{a[0]}** ({a[1]:.1%}): {verdict}.")
        show_panel(res.panel, "ko_image")
        panels.append(res.panel)
    else:
        st.info("Pick an image in the sidebar to see how its prediction changes.")
    st.subheader("Reference-set accuracy with each block knocked out")
    sweep_key = (key, folder, mode)
    requested = st.session_state.setdefault("sweeps", set())
    if sweep_key not in requested:
        st.caption(f"Runs the reference set once per SE block ({len(blocks)} blocks); the result is cached.")
        if st.button("Run the sweep (one pass per SE block)", key="ko_run"):
            requested.add(sweep_key)
            st.rerun()
    if sweep_key in requested:
        try:
            panel = get_sweep(*key, folder, mode)
        except DatasetError as e:  # no labelled images for this model: a hint, not a failure
            st.warning(str(e))
        except SevisError as e:
            st.error(str(e))
        else:
            show_panel(panel, "ko_sweep")
            panels.append(panel)
    return panels


def view_architecture(loaded, key, blocks):
    panels = get_architecture(*key)
    facts = V.model_summary(loaded)
    m1, m2, m3 = st.columns(3)
    m1.metric("Parameters", f"{facts['parameters']:,}")
    m2.metric("SE blocks", facts["se_blocks"])
    share = facts["se_parameters"] / max(facts["parameters"] - facts["se_parameters"], 1)
    m3.metric("SE's extra parameters", f"{facts['se_parameters']:,}", f"+{share:.1%} of the plain model",
              delta_color="off", delta_arrow="off")
    st.markdown("**SE blocks** (name, stage, channels C, squeeze width C/r, parameters)")
    st.dataframe(panels[0].data, hide_index=True, height=min(38 + 35 * len(panels[0].data), 400))
    download_menu(panels[0], "arch_table")
    if not blocks:
        st.info("This model has no SE blocks.")
    for i, p in enumerate(panels[1:], start=1):
        show_panel(p, f"arch_{i}")
        if p.key == "se_params_per_stage":
            st.dataframe(p.data, hide_index=True, column_config={
                "parameters": st.column_config.NumberColumn("SE parameters (real)", format="localized"),
                "estimate": st.column_config.NumberColumn("paper estimate (2/r)·N·C²", format="localized"),
                "share": st.column_config.NumberColumn("share of SE's parameters", format="percent"),
                "of_base": st.column_config.NumberColumn("extra vs plain model", format="percent"),
                "channels": st.column_config.NumberColumn("channels C", format="%d")})
    return panels


def view_export(loaded):
    st.markdown("Every figure has its own **⬇ Download** menu. Here you can take a whole view at once as a "
                "**teaching pack**: a zip with each figure, the data behind it, and a README saying what each "
                "figure shows.")
    stored = st.session_state.get("panels", {})
    available = [v for v in VIEWS[:-1] if stored.get(v)]
    if not static_ok():
        st.warning(E.NO_CHROME)
    if not available:
        st.info("Open a view first (e.g. Live inference or Class × depth); its figures can then be packed here.")
        return
    last = st.session_state.get("last_view")
    view = st.selectbox("View", available, key="ex_view", index=available.index(last) if last in available else 0)
    formats_all = list(E.ALL_FORMATS) if static_ok() else ["html", "csv", "json"]
    formats = st.multiselect("Formats in the pack", formats_all,
                             default=[f for f in ("png", "html", "csv") if f in formats_all], key="ex_formats")
    panels = stored[view]
    st.markdown("\n".join(f"- **{p.title}**: {p.caption}" for p in panels))
    st.download_button(f"⬇ Teaching pack: {view} ({len(panels)} figures)",
                       data=lambda: E.teaching_pack(panels, view, formats or ["html"],
                                                    context=f"Model: {loaded.name} ({loaded.spec})."),
                       file_name=E.safe_filename(f"sevis_{view}_teaching_pack", "zip"), mime=E.MIME["zip"],
                       key="ex_pack", on_click="ignore", type="primary")
    for i, p in enumerate(panels):
        with st.expander(p.title):
            show_panel(p, f"ex_{i}")


# ---------------------------------------------------------------------------------------- page
def main() -> None:
    loaded, key = model_picker()
    images, errors = image_picker(loaded, key)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    st.markdown(PAGE_CSS, unsafe_allow_html=True)
    st.markdown("## Inside Squeeze-and-Excitation")
    st.caption("How SE blocks rescale channels (excitation s = σ(W₂·ReLU(W₁·z)), one value per channel), "
               f"for **{loaded.name}**: from one image, over classes and depth, knocked out, and what they cost.")
    for line in errors:
        st.error(line)
    try:
        results = results_for(key, images)
    except SevisError as e:
        st.error(str(e))
        results, images = [], []
    tabs = st.tabs(VIEWS, key="view", on_change="rerun")
    with tabs[0]:
        if tabs[0].open:
            remember(VIEWS[0], view_live(loaded, key, images, errors, results, blocks))
    with tabs[1]:
        if tabs[1].open:
            remember(VIEWS[1], view_compare(loaded, key, images, results, blocks))
    with tabs[2]:
        if tabs[2].open:
            remember(VIEWS[2], view_class_depth(loaded, key, blocks))
    with tabs[3]:
        if tabs[3].open:
            remember(VIEWS[3], view_knockout(loaded, key, images, blocks))
    with tabs[4]:
        if tabs[4].open:
            remember(VIEWS[4], view_architecture(loaded, key, blocks))
    with tabs[5]:
        if tabs[5].open:
            view_export(loaded)


main()
