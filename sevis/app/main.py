"""sevis app: see what Squeeze-and-Excitation blocks do inside a trained network.

    streamlit run app.py        (in the checkout)
    sevis app                   (an installed sevis: `streamlit run` on sevis/app/script.py, which calls main())

Page set-up, the sidebar (model and images), the grouped navigation and the view dispatch only (only the open view
computes). Each view's widgets live in
sevis/app/<view>.py, its computation in sevis/views/<view>.py, tested without Streamlit. Models are
loaded once per spec (st.cache_resource, shared by all sessions); reference-set statistics and sweeps are
cached with st.cache_data (sevis/app/common.py).
"""
from __future__ import annotations

from collections import OrderedDict

import streamlit as st

from sevis import SevisError, find_se_blocks
from sevis.analysis.images import default_sample_names
from sevis.analysis.reference import MIN_IMAGES_PER_CLASS
from sevis.app import (
    ablations,
    architecture,
    channel,
    class_depth,
    compare,
    export,
    families,
    inside,
    knockout,
    live,
    tour,
    training,
)
from sevis.app.common import (
    LECTURE_KEY,
    Context,
    content_hash,
    get_model,
    get_results,
    get_samples,
    lecture_stage,
    remember,
)
from sevis.app.share import show_the_way_in
from sevis.app.style import LECTURE_CSS, PAGE_CSS
from sevis.core.formula import excitation_formula
from sevis.models.zoo import EMBEDDED, TIMM_SE_MODELS, TORCHVISION_SE_MODELS
from sevis.names import ABLATIONS, DEFAULT_SPEC, FAMILY_RUNS, snapshot_epochs, trained_ablations, trained_families
from sevis.views.architecture import model_summary

# Every view module has TITLE, SLUG and render(ctx) -> its result (Export: render(ctx, views)).
VIEW_MODULES = [live, compare, class_depth, knockout, inside, channel, architecture, ablations, families, tour,
                training]
# The navigation, by what a visitor comes for: a first walk through, exploring this model, the experiments behind
# the paper's claims (trained variants, other architectures, training), and files to take away.
NAV_GROUPS: dict[str, list] = {
    "Start": [tour],
    "Explore": [live, compare, class_depth, inside, channel, knockout],
    "Experiments": [architecture, ablations, families, training],
    "Export": [export],
}
VIEWS = [m.TITLE for group in NAV_GROUPS.values() for m in group]
VIEW_KEY = "view"  # the one session-state key naming the open view (deep links, click targets and tests set it)
DEFAULT_VIEW = live.TITLE
MODEL_KINDS = OrderedDict([
    ("Our SE-ResNet-50 layout (Fashion-MNIST in context)", "embedded"),
    ("Its plain twin, no SE", "embedded-plain"),
    ("Our first SE-ResNet (centred Fashion-MNIST)", "embedded-centred"),
    ("Ablation variant (trained by sevis ablate)", "ablation"),
    ("Architecture model (trained by sevis family)", "family"),
    ("Training snapshot of our SE-ResNet-50 layout (sevis train --snapshots)", "snapshot"),
    ("timm ImageNet model", "timm"),
    ("torchvision ImageNet model", "torchvision"),
    ("Uploaded checkpoint", "checkpoint"),
])
CHECKPOINT_ARCHS = ["sevis:fmnist_se_resnet50", "sevis:fmnist_se_resnet", "sevis:se_resnet50", "sevis:se_resnet18",
                    "timm:seresnet50", "timm:legacy_seresnet50", "timm:efficientnet_b0",
                    "torchvision:efficientnet_b0",
                    "torchvision:mobilenet_v3_large", "(from its model card)"]


# ---------------------------------------------------------------------------------------- sidebar
def model_picker():
    """Return (loaded model, (spec, pretrained, arch)); a failed load keeps the previous model."""
    from sevis.app import guard
    guard.forget_ended_sessions()  # uploads of closed sessions go now, not at the next upload
    sb = st.sidebar
    sb.header("Model")
    # Shipped models are called by their spec everywhere (picker, header, README): "embedded", "embedded-plain", …
    label = sb.selectbox("Network", list(MODEL_KINDS), key="model_kind",
                         format_func=lambda k: f"{MODEL_KINDS[k]}: {k}" if MODEL_KINDS[k] in EMBEDDED else k)
    kind = MODEL_KINDS[label]
    spec, pretrained, arch = kind, True, None
    if kind in ("timm", "torchvision"):
        names = list(TIMM_SE_MODELS if kind == "timm" else TORCHVISION_SE_MODELS)
        name = sb.selectbox(f"{kind} model", names + (["other…"] if guard.free_names() else []), key=f"{kind}_name")
        if name == "other…":
            name = sb.text_input(f"{kind} model name", key=f"{kind}_other").strip()
        pretrained = not sb.checkbox("Random weights (no download; for architecture views)", key=f"{kind}_random")
        spec = f"{kind}:{name}" if name else ""
    elif kind == "ablation":
        trained = trained_ablations()
        name = sb.selectbox("Variant", trained, key="ablation_name",
                            format_func=lambda n: f"{n}: {ABLATIONS[n]['change']}") if trained else None
        spec = f"ablation:{name}" if name else ""
    elif kind == "family":
        trained = trained_families()
        name = sb.selectbox("Architecture", trained, key="family_name",
                            format_func=lambda n: f"{n} (seed {FAMILY_RUNS[n]['seed']})") if trained else None
        spec = f"family:{name}" if name else ""
    elif kind == "snapshot":
        epochs = snapshot_epochs(DEFAULT_SPEC)
        epoch = sb.selectbox("Epoch", epochs, index=len(epochs) - 1 if epochs else 0, key="snapshot_epoch",
                             format_func=lambda e: "the initialisation (epoch 0)" if e == 0 else f"after epoch {e}")
        spec = f"{DEFAULT_SPEC}@{epoch}" if epochs else ""
    elif kind == "checkpoint":
        up = sb.file_uploader("Weights file (.safetensors, .pt, .pth)", type=["safetensors", "pt", "pth"],
                              key="ckpt_file")
        arch_label = sb.selectbox("Architecture", CHECKPOINT_ARCHS, key="ckpt_arch")
        arch = None if arch_label.startswith("(") else arch_label
        spec = ""
        if up is None:
            guard.release_upload()
        else:
            try:
                spec = guard.store_upload(up.name, up.getvalue())
            except SevisError as e:
                sb.error(str(e))
    requested = (spec, pretrained, arch)
    loaded, error = None, None
    listed = {f"timm:{n}" for n in TIMM_SE_MODELS} | {f"torchvision:{n}" for n in TORCHVISION_SE_MODELS}
    if spec:
        try:
            guard.check_model(spec, listed)
            with st.spinner("Loading the model…"):
                loaded = get_model(*requested)
            st.session_state["model_ok"] = requested
        except Exception as e:  # a broken third-party model must not take the app down
            error = guard.user_message(spec, e)
    else:
        error = ("upload a weights file to use it (the previous model stays active meanwhile)" if kind == "checkpoint"
                 else "no ablation variant is trained yet: run `sevis ablate`" if kind == "ablation"
                 else "no architecture model is trained yet: run `sevis family`" if kind == "family"
                 else "no training snapshot is saved yet: run `sevis train --snapshots`" if kind == "snapshot"
                 else "choose a model name or upload a weights file")
    if loaded is None:
        (sb.info if not spec else sb.error)(error)
        previous = st.session_state.get("model_ok")
        if previous and previous != requested:
            loaded, requested = get_model(*previous), previous
            sb.caption(f"Still showing **{loaded.shown_name}**.")
        elif kind in EMBEDDED or previous is None:
            fallback = (kind if kind in EMBEDDED else "embedded", False, None)
            loaded, requested = get_model(*fallback), fallback
            sb.warning("Showing the same architecture with untrained (random) weights, so every view still works; "
                       "its predictions are meaningless.")
    facts = model_summary(loaded)
    sb.caption(f"**{loaded.shown_name}** · {facts['parameters']:,} parameters · {facts['se_blocks']} SE blocks "
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
    preferred = default_sample_names(loaded, samples)  # the same images the views' prepared requests use
    skey = f"samples_{loaded.dataset}"
    uploaded = tuple(f.name for f in uploads or [])
    if uploaded and st.session_state.get("uploads_seen") != uploaded:
        st.session_state[skey] = []  # new uploads replace the sample images (pick samples again to add them)
    st.session_state["uploads_seen"] = uploaded
    picked = sb.multiselect("Sample images", list(samples),
                            default=None if skey in st.session_state else (preferred if not uploads else []),
                            key=skey,
                            help="Reference-set garments for Fashion-MNIST models; photos shipped with "
                                 "scikit-image / scikit-learn for ImageNet models.")
    from sevis.app import guard  # per-session caps and decoded-image cache (issue 26)
    return guard.session_decode(uploads or [], [(n, samples[n]) for n in picked])


def folder_picker(loaded) -> str:
    """Sidebar: the labelled reference set every per-class view uses (Class × depth, knock-out, channel)."""
    sb = st.sidebar
    sb.header("Reference set")
    from sevis.app import guard
    bundled = loaded.dataset == "fashion-mnist"
    folder = guard.folder_field(
        "Labelled images: a folder with one sub-folder per class, or a `sevis stats` JSON file",
        key="ref_folder", placeholder="empty: the bundled reference set" if bundled else "empty: the sample photos",
        help="Per-class statistics (Fig. 6, class specificity, the knock-out sweep) need at least "
             f"{MIN_IMAGES_PER_CLASS} images in each class. ImageNet validation images arranged by synset "
             "(n01443537/…) are read with their class names.")
    if not folder:
        sb.caption("Using the bundled Fashion-MNIST reference set (100 test images per class)." if bundled else
                   "No labelled set: the sample photos stand in, one per 'class', too few for per-class statistics.")
    return folder


def results_for(key, images):
    if not images:
        return []
    ids = tuple((im.name, im.image.size, content_hash(im.image.tobytes())) for im in images)
    return get_results(*key, ids, images)


# ---------------------------------------------------------------------------------------- page
def main() -> None:
    """Render the whole page for one run of the script (app.py, or `sevis app` for an installed sevis)."""
    lecture = bool(st.session_state.get(LECTURE_KEY))
    st.set_page_config(page_title="sevis: inside Squeeze-and-Excitation", page_icon=":material/biotech:", layout="wide",
                       initial_sidebar_state=sidebar_state(lecture))
    lecture = st.sidebar.toggle("Lecture mode", key=LECTURE_KEY,
                                help="For a projector: the sidebar folds away (its arrow at the top left brings it "
                                     "back), the figure comes first with its takeaway under it, figure text at least "
                                     "16 px and titles 20 px, tables that wrap, no download menus (the Export view "
                                     "keeps them).")
    loaded, key = model_picker()
    images, errors = image_picker(loaded, key)
    folder = folder_picker(loaded)
    blocks = [b for b, _ in find_se_blocks(loaded.model)]
    st.markdown(PAGE_CSS + (LECTURE_CSS if lecture else ""), unsafe_allow_html=True)
    formula = excitation_formula(loaded.model, blocks) or "no SE blocks in this model"
    about = (f"How SE blocks rescale channels (excitation {formula}, one value per channel), "
             f"for **{loaded.shown_name}**: from one image, over classes and depth, knocked out, "
             "and what they cost.")
    if lecture:  # the figure comes first: the page's title and its sentence wait in the sidebar
        st.sidebar.caption(about)
    else:
        st.markdown("## Inside Squeeze-and-Excitation")
        st.caption(about)
    if not key[1]:
        st.warning(f"**{loaded.shown_name} has random weights** (nothing was learned): "
                   "its predictions are meaningless, "
                   "and its excitations show only what the architecture does with an image. Views that need a trained "
                   "model say so.", icon=":material/casino:")
    for line in errors:
        st.error(line)
    ctx = Context(loaded, key, images, errors, blocks, folder, lecture=lecture,
                  analyse=lambda: results_for(key, images))
    follow_deep_link()
    module = navigation()
    if module is export:
        export.render(ctx, VIEW_MODULES)
    else:
        # Lecture mode puts the view's lead figure and its takeaway on a stage at the top; the Tour's Back / Next
        # stay above its figure (a stage there only where the Tour calls stage_here)
        with lecture_stage(lecture, lead=LEAD_PANELS.get(module.TITLE), at_top=module is not tour):
            with st.spinner(f"Computing {module.TITLE}…", show_time=True):
                remember(module.TITLE, module.render(ctx))
    show_in_url()


def sidebar_state(lecture: bool) -> str | None:
    """Return the sidebar state for set_page_config: collapsed on the run that switches lecture mode on, expanded on
    the one that switches it off, else None (the reader's own choice stays: the pickers open and close at will)."""
    was = st.session_state.get("_lecture_was", False)
    st.session_state["_lecture_was"] = lecture
    if lecture == was:
        return None
    return "collapsed" if lecture else "expanded"


# The figure lecture mode puts first, where it is not the view's first (a panel key ends with it): Live's heat
# strip of s, not its top-5 bars (the prediction stays in words beside the image).
LEAD_PANELS = {live.TITLE: "heat_strip"}


# ---------------------------------------------------------------------------------------- navigation
def navigation():
    """Show the grouped navigation (one row of pills per group, wrapping as whole groups, so the open view is always
    in sight) and the QR codes; return the open view's module. st.session_state["view"] names the open view."""
    view = st.session_state.get(VIEW_KEY)
    if view not in VIEWS:
        view = st.session_state[VIEW_KEY] = DEFAULT_VIEW
    with st.container(horizontal=True, key="nav", gap="medium", vertical_alignment="bottom"):
        for group, modules in NAV_GROUPS.items():
            titles = [m.TITLE for m in modules]
            nav_key = f"nav_{group.lower()}"
            st.session_state[nav_key] = view if view in titles else None  # one group shows the open view
            st.pills(group, titles, key=nav_key, on_change=open_from, args=(nav_key,), width="content")
        show_the_way_in(view_query())
    return next(m for modules in NAV_GROUPS.values() for m in modules if m.TITLE == view)


def open_from(nav_key: str) -> None:
    """A group's pills changed: open the view picked there (a click on the open view itself keeps it open)."""
    picked = st.session_state.get(nav_key)
    if picked in VIEWS:
        st.session_state[VIEW_KEY] = picked


# ---------------------------------------------------------------------------------------- deep links
SLUGS = {m.TITLE: m.SLUG for m in VIEW_MODULES} | {export.TITLE: "export"}


def follow_deep_link() -> None:
    """Open the view (and Tour step) a link names, ?view=<slug>&step=<n>, once per session: a teacher's bookmark."""
    if st.session_state.get("_deep_link_read"):
        return
    st.session_state["_deep_link_read"] = True
    titles = {slug: title for title, slug in SLUGS.items()}
    slug = st.query_params.get("view")
    if slug in titles:
        st.session_state[VIEW_KEY] = titles[slug]
    step = st.query_params.get("step", "")
    if step.isdigit() and 1 <= int(step) <= len(tour_steps()):
        st.session_state[tour.STEP_KEY] = int(step) - 1


def view_query() -> dict[str, str]:
    """Return the query that opens what is open now: {"view": <slug>}, with "step" in the Tour."""
    slug = SLUGS.get(st.session_state.get(VIEW_KEY), None)
    if slug is None:
        return {}
    query = {"view": slug}
    if slug == "tour":
        query["step"] = str(int(st.session_state.get(tour.STEP_KEY, 0)) + 1)
    return query


def show_in_url() -> None:
    """Keep the address bar on what is open (?view=<slug>, and &step=<n> in the Tour), so it can be bookmarked."""
    want = view_query()
    if want and dict(st.query_params) != want:
        st.query_params.from_dict(want)


def tour_steps() -> tuple:
    from sevis.views.tour import STEPS
    return STEPS
