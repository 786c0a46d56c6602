"""Model cards name near-constant gates by `sevis check`'s definition (issue 25)."""
from __future__ import annotations

import json

import pytest

from sevis.analysis.check import NEAR_CONSTANT_SPREAD, check_loaded
from sevis.analysis.reports import format_evaluation, near_constant_blocks
from sevis.names import PRETRAINED_DIR

CARDS = sorted(PRETRAINED_DIR.glob("*.json")) + sorted((PRETRAINED_DIR / "ablations").glob("*.json"))


def _evaluated(path) -> dict | None:
    card = json.loads(path.read_text())
    ev = card.get("evaluation") if isinstance(card, dict) else None
    return ev if isinstance(ev, dict) and "excitation" in ev else None


@pytest.mark.parametrize("path", [p for p in CARDS if _evaluated(p)], ids=lambda p: p.stem)
def test_card_lists_the_gates_whose_spread_is_below_check_threshold(path):
    ev = _evaluated(path)
    expected = [r["block"] for r in ev["excitation"] if r["spread"] is not None and r["spread"] < NEAR_CONSTANT_SPREAD]
    assert ev["near_constant_blocks"] == expected
    if ev["excitation"]:  # a plain model's report says it has no SE blocks instead
        assert "near-constant gates" in format_evaluation(ev)


def test_ablation_cards_name_their_fixed_scales():
    ev = _evaluated(PRETRAINED_DIR / "ablations" / "squeeze-max.json")
    listed = ev["near_constant_blocks"]
    # a block whose s varies by 0.0115 between images is not near-constant; one at 0.0084 is
    spreads = {r["block"]: r["spread"] for r in ev["excitation"]}
    assert listed and all(spreads[b] < NEAR_CONSTANT_SPREAD for b in listed)
    assert any(NEAR_CONSTANT_SPREAD <= v < 2 * NEAR_CONSTANT_SPREAD for v in spreads.values())


def test_the_default_card_agrees_with_sevis_check(embedded):
    table, _ = check_loaded(embedded)
    from_check = list(table.loc[table["near_constant"].fillna(False).astype(bool), "block"])
    assert near_constant_blocks(embedded.card["evaluation"]["excitation"]) == from_check
    assert embedded.card["evaluation"]["near_constant_blocks"] == from_check
