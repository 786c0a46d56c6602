"""The "Channel" view: one channel of one SE block, over the reference set and on the current image.

- its s for every class over the reference set (box plot with every image as a point);
- the reference images that excite it most and least (Microscope-style, with their s);
- its feature map on the current image before and after scaling by s;
- the prediction when this one channel's s is set to 0 and to 1 (recorder override SetChannels).
"""
from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from PIL import Image
from plotly.subplots import make_subplots

from sevis.analysis.anatomy import block_anatomy
from sevis.analysis.images import default_sample_images, image_stem, sample_photos
from sevis.analysis.inference import run_batch, split_batches
from sevis.analysis.reference import reference_statistics, too_few_images
from sevis.analysis.selectivity import channel_selectivity, most_selective_channel
from sevis.core.recorder import ExcitationRecorder, SetChannels, find_se_blocks
from sevis.core.statistics import ExcitationStats
from sevis.data.folders import folder_images
from sevis.data.preprocess import open_image
from sevis.errors import DatasetError, SevisError
from sevis.figures.plots import PALETTE, S_AXIS, Panel, apply_layout, color_for, s_axis_range
from sevis.figures.sentences import finish, listing, num, pct, same
from sevis.figures.shared_figures import feature_map_grid
from sevis.models.zoo import LoadedModel
from sevis.views.base import Progress, ViewRequest, ViewResult

SLUG = "channel"
TITLE = "Channel"


GALLERY = 9  # images that excite the channel most, and least
THUMB = 64  # gallery thumbnails are at most this many pixels on a side


@dataclass
class ReferenceExcitations:
    """s of every block for every reference image, with the images (as small RGB arrays) and labels."""

    classes: list[str]
    labels: np.ndarray  # N
    thumbnails: list[np.ndarray]  # N × (h×w×3 uint8)
    excitations: "OrderedDict[str, np.ndarray]"  # block -> N×C
    source: str


def _thumb(img: Image.Image) -> np.ndarray:
    img = img.convert("RGB")
    if max(img.size) > THUMB:
        img = img.copy()
        img.thumbnail((THUMB, THUMB))
    return np.asarray(img, np.uint8)


def reference_set_images(loaded: LoadedModel,
                         folder: str | None = None) -> tuple[list[str], list[Image.Image], list[int], str]:
    """Return (classes, RGB images, labels, description) of the reference set the app's views use."""
    if folder:
        classes, images, labels, _ = folder_images(folder)
        return classes, images, labels, f"folder {folder} ({len(images)} images)"
    if loaded.dataset == "fashion-mnist":
        ref = loaded.reference_set()
        images = [Image.fromarray(a, "L").convert("RGB") for a in ref.images]
        return list(ref.classes), images, [int(y) for y in ref.labels], \
            f"the bundled Fashion-MNIST reference set ({len(images)} images)"
    photos = sample_photos()
    if not photos:
        raise DatasetError("no reference images: name a folder with one sub-folder per class")
    images = [open_image(b, name=n) for n, b in photos.items()]
    return list(photos), images, list(range(len(images))), f"the {len(images)} sample photos"


@torch.inference_mode()
def reference_excitations(loaded: LoadedModel, folder: str | None = None, batch_size: int = 200,
                          progress: Callable[[float], None] | None = None) -> ReferenceExcitations:
    """Return s at every SE block for every reference image (N×C per block)."""
    if not find_se_blocks(loaded.model):
        raise SevisError(f"{loaded.name} has no SE blocks")
    classes, images, labels, source = reference_set_images(loaded, folder)
    if not folder and loaded.dataset == "fashion-mnist":
        # Dataset images are already what the model was trained on: no upload preprocessing (split_batches).
        batches = (x for x, _ in split_batches(loaded, loaded.reference_set(), batch_size))
    else:
        batches = (torch.stack([loaded.preprocess(im) for im in images[i:i + batch_size]])
                   for i in range(0, len(images), batch_size))
    chunks: dict[str, list[torch.Tensor]] = {}
    with ExcitationRecorder(loaded.model) as rec:
        for i, x in zip(range(0, len(images), batch_size), batches):
            loaded.model(x)
            for name, s in rec.pop().items():
                chunks.setdefault(name, []).append(s)
            if progress:
                progress(min((i + batch_size) / len(images), 1.0))
    exc = OrderedDict((n, torch.cat(c).numpy()) for n, c in chunks.items())
    return ReferenceExcitations(classes, np.asarray(labels), [_thumb(im) for im in images], exc, source)


def most_and_least(ref: ReferenceExcitations, block: str, channel: int,
                   n: int = GALLERY) -> tuple[np.ndarray, np.ndarray]:
    """Return the indices of the n reference images with the highest s of (block, channel), highest first,
    and of the n with the lowest, lowest first; with fewer than 2n images each row gets half of them, so no
    image is shown as both most and least exciting."""
    s = ref.excitations[block][:, channel]
    order = np.argsort(-s, kind="stable")
    n = min(n, len(s) // 2)
    return order[:n], order[::-1][:n]


def channel_from_point(point: Mapping, blocks: Sequence[str]) -> tuple[str, int] | None:
    """Return (block, channel) named by a clicked chart point (its customdata [block, channel], or a heat
    strip cell's y = block and x = channel), or None when the point names no channel."""
    data = point.get("customdata")
    if isinstance(data, (list, tuple)) and len(data) >= 2 and str(data[0]) in blocks:
        try:
            return str(data[0]), int(float(data[1]))
        except (TypeError, ValueError):
            return None
    y, x = point.get("y"), point.get("x")
    if isinstance(y, str) and y in blocks and isinstance(x, (int, float)):
        return y, int(x)
    return None


# One pass over the reference set per model and folder: every channel and image the view is asked about reuses it.
_REFERENCE: "weakref.WeakKeyDictionary[torch.nn.Module, tuple]" = weakref.WeakKeyDictionary()
_REFERENCE_LOCK = threading.Lock()


def channel_reference(loaded: LoadedModel, folder: str | None = None,
                      progress: Progress | None = None) -> tuple[ExcitationStats, ReferenceExcitations]:
    """Return (the reference set's per-class statistics, which pick the default channel as the Tour does; s of every
    reference image, for the box plot and the gallery), kept for the model's last folder."""
    key = folder or ""
    with _REFERENCE_LOCK:
        hit = _REFERENCE.get(loaded.model)
    if hit is not None and hit[0] == key:
        return hit[1], hit[2]
    stats = reference_statistics(loaded, folder).stats
    ref = reference_excitations(loaded, folder, progress=progress)
    with _REFERENCE_LOCK:
        _REFERENCE[loaded.model] = (key, stats, ref)
    return stats, ref


def default_channel(stats: ExcitationStats, names: Sequence[str], block: str | None = None) -> tuple[str, int]:
    """Return the (block, channel) the view opens on: the most class-selective channel of `block`, or of the whole
    model when no block is given (sevis.analysis.selectivity.most_selective_channel, the channel the Tour shows);
    channel 0 of `block` (else of the last block) when no channel's s varies between classes."""
    sel = most_selective_channel(stats, [block] if block else None)
    if sel is None:
        return block or names[-1], 0
    return sel.block, sel.channel


NO_BLOCKS = "This model has no SE blocks, so there are no channels to look at."


def compute(loaded: LoadedModel, request: ViewRequest, progress: Progress | None = None) -> ViewResult:
    """Return the Channel view of request.block and request.channel over the reference set (request.folder), with
    the one image of request.images when given: its feature map and the one-channel knock-out.

    No channel: the most class-selective channel of request.block, or of the whole model without a block (the
    Tour's channel; default_channel). numbers: `block`, `channel`, `selectivity` (the share of the variance of its
    s between class means), `default_channel` (the block's most class-selective channel)."""
    result = ViewResult(SLUG, TITLE)
    names = [b.name for b, _ in find_se_blocks(loaded.model)]
    if not names:
        result.notes.append(NO_BLOCKS)
        return result
    if len(request.images) > 1:
        raise SevisError(f"the Channel view takes at most one image; {len(request.images)} were given")
    if request.block is not None and request.block not in names:
        raise SevisError(f"no SE block named {request.block!r} in {loaded.name}; blocks: {', '.join(names)}")
    stats, ref = channel_reference(loaded, request.folder, progress)
    block, default = default_channel(stats, names, request.block)
    channel = default if request.channel is None else int(request.channel)
    _check(ref, block, channel)
    share = channel_selectivity(stats, block)
    image = request.images[0] if request.images else None
    few = too_few_images(stats)  # then the share is no measured preference (1 with one image per class): not stated
    shown = channel_panels(loaded, ref, block, channel, image, None if few else float(share[channel]))
    result.panels, result.takeaway = shown.panels, shown.takeaway
    result.notes.append(f"Statistics over {ref.source}.")
    if few:
        result.notes.append("Some classes have fewer than 5 images here, so class means rest on a few images: the "
                            "channel opened first is the one whose s differs most between them, not a measured "
                            "class preference.")
    if not np.isfinite(share).any():
        result.notes.append(f"No channel of {block} has an s that varies over the reference images, so none is "
                            "more class-selective than another.")
    result.numbers = {"block": block, "channel": channel, "selectivity": float(share[channel]),
                      "default_channel": default}
    return result


def prepared_requests(loaded: LoadedModel) -> list[ViewRequest]:
    """Return the requests `sevis prepare` stores: the app's first open (the most class-selective channel on the
    first sample image the sidebar preselects) and the same without an image (`sevis export channel`)."""
    return [ViewRequest(images=tuple(default_sample_images(loaded)[:1])), ViewRequest()]


@dataclass
class ChannelResult:
    """The Channel view's panels and the numbers its takeaway is built from."""

    panels: list[Panel]
    takeaway: str
    top: np.ndarray
    bottom: np.ndarray
    knockout: pd.DataFrame  # class, when, probability


def _check(ref: ReferenceExcitations, block: str, channel: int) -> None:
    if block not in ref.excitations:
        raise SevisError(f"no SE block named {block!r}; blocks: {', '.join(ref.excitations)}")
    c = ref.excitations[block].shape[1]
    if not 0 <= int(channel) < c:
        raise SevisError(f"{block} has channels 0 to {c - 1}; there is no channel {channel}")


def one_channel_knockout(loaded: LoadedModel, image, block: str, channel: int, k: int = 5) -> pd.DataFrame:
    """Return the image's class probabilities as computed, with s of (block, channel) := 0 and := 1, for
    the classes in any of the three top-k lists (class, when, probability)."""
    x = torch.stack([loaded.preprocess(image.image)])
    runs = OrderedDict([("as computed", run_batch(loaded, x)),
                        (f"s[{channel}] := 0", run_batch(loaded, x, {block: SetChannels({channel: 0.0})})),
                        (f"s[{channel}] := 1", run_batch(loaded, x, {block: SetChannels({channel: 1.0})}))])
    shown = list(dict.fromkeys(c for r in runs.values() for c, _ in r.topk(k)[0]))
    idx = [loaded.classes.index(c) for c in shown]
    return pd.concat([pd.DataFrame({"image": image.name, "class": shown, "when": when,
                                    "probability": r.probs[0, idx].tolist()}) for when, r in runs.items()],
                     ignore_index=True)


def channel_panels(loaded: LoadedModel, ref: ReferenceExcitations, block: str, channel: int,
                   image=None, selectivity: float | None = None) -> ChannelResult:
    """Return the Channel view for (block, channel): s per class over the reference set, the most and least
    exciting reference images, and, with an image, its feature map before/after scaling and the prediction
    with this channel's s set to 0 and to 1. `selectivity`: the channel's class selectivity
    (sevis.analysis.selectivity.channel_selectivity), stated in the takeaway when given. Raises SevisError for an
    unknown block or channel."""
    _check(ref, block, channel)
    channel = int(channel)
    key = f"{block}_ch{channel}"
    s_all = ref.excitations[block][:, channel]
    per_class = pd.DataFrame({"index": np.arange(len(s_all)), "class": [ref.classes[y] for y in ref.labels],
                              "s": s_all.astype(float)})
    panels = [Panel(f"{key}_by_class", f"s of channel {channel} at {block} per class",
                      f"Over {ref.source}: each point is one image; each box summarises its class (median line, "
                      "quartiles, dashed line: the class mean). The boxes show classes on average; a channel whose "
                      "boxes sit apart responds to the class, one whose boxes overlap does not.",
                      class_strip(per_class, f"Excitation s of channel {channel} at {block}, per class"), per_class)]
    top, bottom = most_and_least(ref, block, channel)
    gallery = pd.DataFrame(
        [{"group": "most exciting", "rank": r + 1, "index": int(i), "class": ref.classes[ref.labels[i]],
          "s": float(s_all[i])} for r, i in enumerate(top)]
        + [{"group": "least exciting", "rank": r + 1, "index": int(i), "class": ref.classes[ref.labels[i]],
            "s": float(s_all[i])} for r, i in enumerate(bottom)])
    labels = [f"{g['class'][:10]} · {g['s']:.2f}" for _, g in gallery.iterrows()]
    panels.append(Panel(
        f"{key}_gallery", f"Reference images that excite channel {channel} of {block} most and least",
        f"Top row: the {len(top)} single images of {ref.source} with the highest s for this channel; bottom "
        f"row: the {len(bottom)} with the lowest. Each is labelled with its class and s. Single images at the "
        "extremes can come from other classes than the box plot's highest and lowest class on average.",
        image_grid([ref.thumbnails[i] for i in top] + [ref.thumbnails[i] for i in bottom], labels,
                     [f"most (s ≥ {s_all[top[-1]]:.2f})", f"least (s ≤ {s_all[bottom[-1]]:.2f})"], len(top),
                     f"The {len(top)} reference images that excite channel {channel} of {block} most, and the "
                     f"{len(bottom)} least"), gallery))
    ko = pd.DataFrame(columns=["image", "class", "when", "probability"])
    text = channel_words(per_class, gallery, block, channel, selectivity)
    if image is not None:
        a = block_anatomy(loaded, image, block)
        u, us = a.u[channel], a.scaled[channel]
        rows = []
        for row, arr in (("U", u), ("U·s", us)):
            yy, xx = np.indices(arr.shape)
            rows.append(pd.DataFrame({"image": image.name, "row": row, "column": f"s = {a.s[channel]:.2f}",
                                      "y": yy.ravel(), "x": xx.ravel(), "value": arr.ravel()}))
        maps = pd.concat(rows, ignore_index=True)
        maps["column"] = maps["row"]
        maps["row"] = f"channel {channel}"
        zmax = float(np.abs(u).max()) or 1.0
        panels.append(Panel(
            f"{image_stem(image.name)}_{key}_feature_map", f"Channel {channel} of {block} on {image.name}: U and U·s",
            f"Left: the feature map U of this channel for {image.name}; right: after scaling by s = "
            f"{a.s[channel]:.2f}, on the same colour scale.",
            # Short title, details in the subtitle: the app shows this figure in a third of the page.
            feature_map_grid(maps, f"Channel {channel} of {block}: U and U·s", ["U", "U·s"], [f"channel {channel}"],
                               zmax, subtitle=f"{image.name}, s = {a.s[channel]:.2f}"),
            maps))
        ko = one_channel_knockout(loaded, image, block, channel)
        panels.append(Panel(
            f"{image_stem(image.name)}_{key}_knockout",
            f"Prediction for {image.name} with channel {channel} of {block} "
                                                   "set to 0 and to 1",
            "Class probabilities as computed (blue), with this one channel's s set to 0 (red: the channel is "
            "switched off) and to 1 (green: passed on whole); every other channel keeps its own s.",
            prediction_variants(ko, f"Prediction for {image.name}", subtitle=f"channel {channel} of {block}: as "
                                  "computed, set to 0, set to 1"), ko))
        top_class = a.topk[0][0]
        p = ko[ko["class"] == top_class].set_index("when")["probability"]
        whens = list(dict.fromkeys(ko["when"]))
        p0, p_off, p_on = p[whens[0]], p[whens[1]], p[whens[2]]
        off = (f"leaves P({top_class}) at {pct(p0)}" if pct(p_off) == pct(p0) else
               f"moves P({top_class}) from {pct(p0)} to {pct(p_off)}")
        on = "leaves it unchanged" if pct(p_on) == pct(p0) else f"moves it to {pct(p_on)}"
        text += f" On {image.name} (s = {num(a.s[channel])}), setting it to 0 {off}; setting it to 1 {on}."
    return ChannelResult(panels, finish(text, capitalise=False), top, bottom, ko)


def channel_words(per_class: pd.DataFrame, gallery: pd.DataFrame, block: str, channel: int,
                  selectivity: float | None = None) -> str:
    """Return what the box plot (class means) and the gallery (single images) each show for one channel, so the
    sentence agrees with both: the classes with the highest and lowest mean s, how much of the variance of s the
    class explains (`selectivity`, worded as the Tour words it), and the classes of the most and least exciting
    single images."""
    by_class = per_class.groupby("class", sort=False)["s"].mean()
    hi, lo = by_class.idxmax(), by_class.idxmin()
    if same(by_class[hi], by_class[lo]):
        text = (f"Channel {channel} of {block} gets the same mean s in every class ({num(by_class[hi])}): it does "
                "not respond to the class.")
    else:
        text = (f"Channel {channel} of {block} is excited most by {hi} on average (mean s = {num(by_class[hi])}) and "
                f"least by {lo} ({num(by_class[lo])}).")
    if selectivity is not None and np.isfinite(selectivity):
        text += f" The class explains {selectivity:.0%} of the variance of its s over the reference images."
    for group, word in (("most exciting", "most"), ("least exciting", "least")):
        part = gallery[gallery["group"] == group]
        if not len(part):
            continue
        counts = part["class"].value_counts()
        classes = listing([f"{n} {c}" for c, n in counts.items()][:3]) + (" and others" if len(counts) > 3 else "")
        text += f" The {len(part)} single images that excite it {word} are {classes}."
    return text


def class_strip(frame: pd.DataFrame, title: str) -> go.Figure:
    """Box plot with every point of s per class (frame: class, s), classes in frame order."""
    fig = go.Figure()
    for j, (cls, part) in enumerate(frame.groupby("class", sort=False)):
        fig.add_trace(go.Box(y=part["s"], name=str(cls), boxpoints="all", jitter=0.45, pointpos=0, boxmean=True,
                             marker=dict(size=3, color=color_for(j), opacity=0.55), line=dict(color=color_for(j)),
                             fillcolor="rgba(0,0,0,0)", hovertemplate=f"{cls}<br>s = %{{y:.3f}}<extra></extra>"))
    fig.update_yaxes(title_text=S_AXIS, range=s_axis_range(frame["s"]) if len(frame) else [0, 1])
    fig.update_xaxes(title_text="class", type="category")
    return apply_layout(fig, title, height=380, showlegend=False)


def image_grid(images: Sequence[np.ndarray], labels: Sequence[str], rows: Sequence[str], per_row: int,
               title: str) -> go.Figure:
    """Images (H×W×3 uint8) in len(rows) rows of `per_row`, each titled by its label (Microscope-style)."""
    fig = make_subplots(rows=len(rows), cols=per_row, subplot_titles=list(labels), row_titles=list(rows),
                        horizontal_spacing=0.01, vertical_spacing=0.12)
    for i, img in enumerate(images):
        r, c = divmod(i, per_row)
        fig.add_trace(go.Image(z=img, hovertemplate=f"{labels[i]}<extra></extra>"), row=r + 1, col=c + 1)
    fig.update_xaxes(showticklabels=False, showgrid=False)
    fig.update_yaxes(showticklabels=False, showgrid=False)
    fig.update_annotations(font_size=10)
    return apply_layout(fig, title, height=130 + 165 * len(rows), margin=dict(l=40, r=40, t=80, b=10))


def prediction_variants(frame: pd.DataFrame, title: str, subtitle: str | None = None) -> go.Figure:
    """Grouped horizontal bars of class probabilities (frame: class, when, probability), one colour per `when`."""
    fig = go.Figure()
    classes = list(dict.fromkeys(frame["class"]))
    for j, (when, part) in enumerate(frame.groupby("when", sort=False)):
        p = dict(zip(part["class"], part["probability"]))
        fig.add_trace(go.Bar(y=classes, x=[p.get(c, np.nan) for c in classes], orientation="h", name=str(when),
                             marker_color=(PALETTE[0], PALETTE[3], PALETTE[2], PALETTE[1])[j % 4],
                             hovertemplate=f"%{{y}}: %{{x:.2%}}<extra>{when}</extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(range=[0, 1], tickformat=".0%", title_text="probability")
    return apply_layout(fig, title, height=130 + 50 * len(classes), subtitle=subtitle, barmode="group",
                   margin=dict(l=140, r=20, t=80, b=45))
