"""SE's extra parameters: the real count per stage, the paper's estimate, and how both change with r."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from sevis.params import (TOTAL, build_on_meta, count_parameters, paper_estimate, parameter_breakdown,
                          reduction_sweep, se_parameters)
from sevis.resnet import ResNetConfig, architecture_config


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
