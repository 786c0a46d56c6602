"""SE's extra parameters: the real count per stage, the paper's estimate, and how both change with r."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from sevis.models.params import (
    TOTAL,
    build_on_meta,
    count_parameters,
    floor_ratio,
    paper_estimate,
    parameter_breakdown,
    reduction_sweep,
    se_parameters,
    squeeze_floor,
    squeeze_widths,
)
from sevis.models.resnet import ResNetConfig, architecture_config
from sevis.views.architecture import architecture_panels


def _total(df):
    row = df[df["stage"] == TOTAL]
    assert len(row) == 1 and df.index[-1] == row.index[0]  # the total is the last row
    return row.iloc[0]


def test_real_se_count_equals_the_parameter_difference_of_se_resnet50_and_resnet50():
    se50, plain50 = build_on_meta("se_resnet50"), build_on_meta("resnet50")
    table = se_parameters(se50)
    assert _total(table)["parameters"] == count_parameters(se50) - count_parameters(plain50) == 2_530_992
    assert list(table["stage"][:-1]) == [2, 3, 4, 5]
    assert list(table["blocks"][:-1]) == [3, 4, 6, 3]
    assert list(table["channels"][:-1]) == [256, 512, 1024, 2048]
    assert table["parameters"][:-1].sum() == _total(table)["parameters"]
    assert _total(table)["share"] == pytest.approx(1.0)
    # ~10% on top of ResNet-50, most of it in the last stage (paper, Section 4)
    assert _total(table)["of_base"] == pytest.approx(2_530_992 / 25_557_032)
    assert table["share"].iloc[3] > 0.5


def test_paper_estimate_is_within_a_few_percent_of_the_real_count():
    se50, plain50 = build_on_meta("se_resnet50"), build_on_meta("resnet50")
    real = count_parameters(se50) - count_parameters(plain50)
    est = paper_estimate(architecture_config("se_resnet50"))
    # (2/16)·(3·256² + 4·512² + 6·1024² + 3·2048²)
    assert _total(est)["estimate"] == 2 / 16 * (3 * 256**2 + 4 * 512**2 + 6 * 1024**2 + 3 * 2048**2)
    assert _total(est)["estimate"] == pytest.approx(real, rel=0.03)
    assert list(est["estimate"][:-1]) == [2 / 16 * n * c * c for n, c in [(3, 256), (4, 512), (6, 1024), (3, 2048)]]


def test_parameter_breakdown_exact_count_matches_the_built_models_per_stage():
    for cfg in [architecture_config("se_resnet50"), architecture_config("fmnist_se_resnet"),
                architecture_config("se_resnet18", reduction=8, se_divisor=8),
                architecture_config("fmnist_se_resnet", integration="pre"),
                architecture_config("fmnist_se_resnet", integration="identity")]:
        real = se_parameters(build_on_meta(cfg))
        exact = parameter_breakdown(cfg)
        assert list(exact["parameters"]) == list(real["parameters"]), cfg
        plain = count_parameters(build_on_meta(replace(cfg, se=False)))
        assert _total(exact)["parameters"] == count_parameters(build_on_meta(cfg)) - plain


def test_paper_table_parameter_counts_for_each_reduction_ratio():
    sweep = reduction_sweep("se_resnet50", [4, 8, 16, 32])
    assert list(sweep["r"]) == [4, 8, 16, 32]
    paper = {4: 35.7e6, 8: 30.7e6, 16: 28.1e6, 32: 26.9e6}  # ablation table
    for row in sweep.itertuples():
        assert row.parameters == pytest.approx(paper[row.r], rel=0.005)
        assert row.parameters - row.base_parameters == row.se_parameters  # analytic == built on meta
        assert row.estimate == pytest.approx(row.se_parameters, rel=0.03)
    assert (sweep["base_parameters"] == 25_557_032).all()
    assert sweep["se_parameters"].is_monotonic_decreasing
    # doubling r roughly halves SE's cost
    assert sweep["se_parameters"].iloc[0] / sweep["se_parameters"].iloc[1] == pytest.approx(2, rel=0.02)


def test_reduction_sweep_rejects_bad_ratios():
    with pytest.raises(ValueError):
        reduction_sweep("fmnist_se_resnet", [0])


def test_counting_allocates_no_weights():
    m = build_on_meta("se_resnet101")
    assert all(p.device.type == "meta" for p in m.parameters())


def test_real_count_on_a_timm_model_equals_its_plain_twin_difference():
    import timm
    with torch.device("meta"):
        se18 = timm.create_model("seresnet18", pretrained=False)
        plain18 = timm.create_model("resnet18", pretrained=False)
    table = se_parameters(se18)
    assert list(table["stage"][:-1]) == [2, 3, 4, 5]
    assert _total(table)["parameters"] == count_parameters(se18) - count_parameters(plain18)


def test_model_without_se():
    table = se_parameters(build_on_meta("resnet18"))
    assert list(table["stage"]) == [TOTAL]
    assert table["parameters"].iloc[0] == 0 and table["blocks"].iloc[0] == 0


def test_plain_config_still_reports_what_se_would_add():
    cfg = ResNetConfig(se=False)
    assert _total(parameter_breakdown(cfg))["parameters"] == 2_530_992


def test_total_rows_have_a_value_in_every_cell():
    from sevis.models.zoo import load_model
    loaded = load_model("embedded-centred")  # the shipped ResNet-18-layout model (r = 4, se_divisor = 8)
    for table in (se_parameters(loaded.model), paper_estimate("fmnist_se_resnet"),
                  parameter_breakdown("fmnist_se_resnet")):
        total = _total(table)
        assert not total.isna().any()
        assert total["channels"] == table["channels"].iloc[:-1].max()  # the widest C of the model
        assert total["blocks"] == table["blocks"].iloc[:-1].sum()


def test_squeeze_widths_follow_the_models_rounding():
    from sevis.core.se import SqueezeExcite
    from sevis.models.zoo import load_model
    loaded = load_model("embedded-centred")
    cfg = loaded.model.cfg
    built = [m.squeeze_channels for m in loaded.model.modules() if isinstance(m, SqueezeExcite)]
    widths = squeeze_widths(cfg)
    assert list(widths["hidden"]) == built  # the width the shipped model really has
    assert list(widths["exact"]) == [c / cfg.reduction for c in widths["channels"]]
    assert (widths["hidden"] % cfg.se_divisor == 0).all() and (widths["hidden"] >= cfg.se_divisor).all()
    assert (widths["hidden"] != widths["exact"]).any()  # C = 16 at r = 4: 4 exact, rounded up to a multiple of 8


def test_floor_ratio_is_where_the_real_count_stops_shrinking():
    ratios = (2, 4, 8, 16, 32, 64)
    for name in ("fmnist_se_resnet", "fmnist_se_resnet50", "se_resnet50"):
        cfg = architecture_config(name)
        sweep = reduction_sweep(cfg, ratios).set_index("r")["se_parameters"]
        start = floor_ratio(cfg, ratios)
        floor = squeeze_floor(cfg)
        assert floor == max(cfg.se_divisor, 1)
        if start is None:  # still shrinking at the largest r
            assert sweep.iloc[-1] < sweep.iloc[-2]
            continue
        assert (sweep.loc[start:] == sweep.loc[start]).all()  # flat from `start` on …
        before = [r for r in ratios if r < start]
        assert not before or sweep.loc[before[-1]] > sweep.loc[start]  # … and not before
        widths = squeeze_widths(replace(cfg, reduction=start))
        assert (widths["hidden"] == floor).all()


def test_architecture_view_explains_rounding_and_floor_from_the_config():
    from sevis.models.zoo import load_model
    loaded = load_model("embedded-centred")
    cfg = loaded.model.cfg
    table_panel, per_stage, vs_r = architecture_panels(loaded)
    table = table_panel.data
    rounded = f"squeeze width (rounded to a multiple of {cfg.se_divisor})"
    assert ["channels", "C/r exact", rounded] == list(table.columns[3:6])
    first = table[table["C/r exact"] != table[rounded]].iloc[0]
    assert (f"C = {first['channels']} gives C/r = {first['C/r exact']:g}, rounded to {first[rounded]}"
            in table_panel.caption)
    assert f"never below {squeeze_floor(cfg)}" in table_panel.caption
    start = floor_ratio(cfg, vs_r.data["r"])
    flat = int(vs_r.data.set_index("r").loc[start, "se_parameters"])
    assert f"From r = {start} on" in vs_r.caption and f"{flat:,}" in vs_r.caption
    assert not per_stage.data.iloc[-1].isna().any()
