"""The README's tables of numbers, generated from the model cards: `python docs/tables.py` rewrites them in place,
`python docs/tables.py --check` fails when README.md no longer matches the cards (tests/test_readme.py runs it).

Each table sits between `<!-- table:NAME -->` and `<!-- /table:NAME -->` in README.md.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sevis.models.checkpoint import read_card  # noqa: E402
from sevis.models.zoo import PRETRAINED_DIR  # noqa: E402
from sevis.names import EMBEDDED  # noqa: E402

README = ROOT / "README.md"
MODEL_LABELS = {
    "embedded": "`embedded` (SE-ResNet-50 layout, r = 16)",
    "embedded-plain": "`embedded-plain` (no SE)",
    "embedded-centred": "`embedded-centred` (ResNet-18 layout, r = 4)",
    "embedded-centred-plain": "`embedded-centred-plain` (no SE)",
}


def _card(spec: str) -> dict:
    return read_card(PRETRAINED_DIR / f"{EMBEDDED[spec]}.safetensors")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min"


def models_table() -> str:
    """Return the table of the four embedded models: command, parameters, test accuracy, training time."""
    lines = ["| model | command | parameters | test accuracy (`sevis evaluate`) | training time (2 CPU cores) |",
             "|---|---|---|---|---|"]
    for spec, label in MODEL_LABELS.items():
        card = _card(spec)
        variant = card["dataset"].get("variant", "centred")  # the first cards predate data variants
        command = card["command"]
        if variant == "centred" and "--data" not in command:  # centred was the old trainer's default; today it is not
            command = command.replace(" --epochs", " --data centred --epochs")
        acc = f"{100 * card['evaluation']['accuracy']:.2f}%"
        acc = f"**{acc}**" if spec == "embedded" else acc
        lines.append(f"| {label} | `{command}` | {card['parameters']:,} | {acc} "
                     f"({'in context' if variant == 'context' else 'centred'}) "
                     f"| {_minutes(card['training']['seconds'])} |")
    return "\n".join(lines)


def se_vs_plain() -> str:
    """Return one sentence: each SE model's test accuracy beside its plain twin's."""
    acc = {spec: 100 * _card(spec)["evaluation"]["accuracy"] for spec in MODEL_LABELS}
    return (f"SE against its plain twin: {acc['embedded']:.2f}% vs {acc['embedded-plain']:.2f}% in context "
            f"({acc['embedded'] - acc['embedded-plain']:+.2f} points), {acc['embedded-centred']:.2f}% vs "
            f"{acc['embedded-centred-plain']:.2f}% on centred data "
            f"({acc['embedded-centred'] - acc['embedded-centred-plain']:+.2f} points), one training run each.")


def accuracy_target(target: float = 0.88) -> str:
    """Return where the default model stands against the accuracy target, from its card's training history."""
    card = _card("embedded")
    tr, acc = card["training"], card["evaluation"]["accuracy"]
    curve = tr["test_accuracy_by_epoch"]
    loss = next((line.split("loss ")[1].split()[0] for line in reversed(tr["log"]) if "loss " in line), "?")
    verdict = "meets" if acc >= target else "misses"
    return (f"Target: at least {100 * target:.0f}% on the in-context test split. `embedded` {verdict} it: "
            f"{100 * acc:.2f}% after {tr['epochs']} epochs (test accuracy per epoch {100 * curve[0]:.1f}% → "
            f"{100 * curve[-1]:.1f}%, the last five {', '.join(f'{100 * a:.1f}' for a in curve[-5:])}; final training "
            f"loss {loss}).")


def paper_table(spec: str) -> str:
    """Return the paper-vs-model table of one embedded model's card, with its accuracy above it."""
    card = _card(spec)
    ev = card["evaluation"]
    lines = [f"{100 * ev['accuracy']:.2f}% on its test split ({ev['images']:,} images):", "",
             "| finding (the paper) | blocks | this model | shows it? |", "|---|---|---|---|"]
    for r in ev["paper_vs_model"]:
        lines.append(f"| {r['finding']} ({r['paper']}) | {r['blocks']} | {r['this_model']} | {r['shows']} |")
    return "\n".join(lines)


def ablation_table() -> str:
    """Return the paper's ablation rows beside ours (sevis.train.ablations.comparison_table), from the variants'
    cards."""
    from sevis.train.ablations import NOISE_SEEDS, comparison_table, noise_floor, summary
    table = summary()
    if table.empty:
        return "(no ablation variant is trained yet: `sevis ablate`)"
    cmp = comparison_table(table)
    floor = noise_floor(table)
    reruns = table.loc[table["name"].isin(NOISE_SEEDS[1:]), "seed"]

    def num(v, fmt: str) -> str:
        return "—" if v is None or v != v else format(v, fmt)

    lines = ["| axis | variant | paper: top-1 err (Δ) | paper params | ours: accuracy | Δ vs baseline "
             "| SE extra params |",
             "|---|---|---|---|---|---|---|"]
    for _, r in cmp.iterrows():
        paper = (f"{num(r['paper_top1_err'], '.2f')}"
                 + (f" ({r['paper_delta']:+.2f})" if r["paper_delta"] == r["paper_delta"]
                    and r["paper_delta"] is not None else ""))
        delta = "—" if r["delta"] is None or r["delta"] != r["delta"] else (
            f"{r['delta']:+.2f}" + (" (noise)" if r["within_noise"] else ""))
        lines.append(f"| {r['axis']} | `{r['variant']}` | {paper} | {num(r['paper_params_m'], '.1f')}"
                     f"{'M' if r['paper_params_m'] == r['paper_params_m'] and r['paper_params_m'] is not None else ''} "
                     f"| {r['accuracy']:.2f}% | {delta} | {r['se_extra']:.1f}% |")
    from sevis.views.ablations import stale_note
    first = table.iloc[0]
    lines += ["", f"Schedule: {int(first['epochs'])} epochs on the first {int(first['train_images']):,} training "
              "garments in context, seed 0 (the baseline's reruns: seeds "
              f"{', '.join(str(int(v)) for v in sorted(reruns))}); accuracy on the 10k test split (half-precision "
              "weights). Baseline: mean of "
              f"{floor['seeds']} seeds; noise floor (their range) "
              f"{num(None if floor['range'] is None else 100 * floor['range'], '.2f')} points. "
              "Δ marked (noise) lies inside it. Training took "
              f"{table['seconds'].sum() / 60:.0f} CPU-minutes for the {len(table)} variants "
              f"({table['seconds'].min() / 60:.1f}-{table['seconds'].max() / 60:.1f} min each, one thread)."]
    note = stale_note(table)
    if note:
        lines += ["", f"**Stale.** {note}"]
    from sevis.train.ablations import grid_findings
    findings = grid_findings(table)
    if findings:
        lines += ["", "What the grid says (computed from the cards):", ""] + [f"- {line}" for line in findings]
    return "\n".join(lines)


def families_table() -> str:
    """Return SE against its plain twin per architecture beside the paper's rows (sevis.train.family_grid), from the
    cards."""
    from sevis.train.family_grid import architecture_table, summary
    from sevis.views.families import display_table, families_takeaway, schedule_words
    table = summary()
    if table.empty:
        return "(no architecture model is trained yet: `sevis family`)"
    shown = display_table(architecture_table(table))
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    lines += ["", f"{schedule_words(table)} Training took {table['seconds'].sum() / 60:.0f} CPU-minutes for the "
              f"{len(table)} runs ({table['seconds'].min() / 60:.1f}-{table['seconds'].max() / 60:.1f} min each, one "
              "thread).", "", f"Takeaway (computed from the cards): {families_takeaway(table)}"]
    return "\n".join(lines)


TABLES = {"models": models_table, "se-vs-plain": se_vs_plain, "accuracy-target": accuracy_target,
          "paper-embedded": lambda: paper_table("embedded"),
          "paper-embedded-centred": lambda: paper_table("embedded-centred"), "ablations": ablation_table,
          "families": families_table}


def render(text: str) -> str:
    """Return `text` with every generated table replaced by its current content."""
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- table:{name} -->\n).*?(\n<!-- /table:{name} -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- table:{name} --> block")
        body = make()
        text = pattern.sub(lambda m: m.group(1) + body + m.group(2), text)
    return text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--check", action="store_true", help="exit 1 when README.md differs from the cards")
    args = ap.parse_args()
    old = README.read_text()
    new = render(old)
    if args.check:
        if new != old:
            print("README.md tables differ from the model cards: run `python docs/tables.py`", file=sys.stderr)
            return 1
        return 0
    README.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
