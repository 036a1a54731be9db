"""Prices: input-length tiers, time-of-day windows, the one cost function and its callers."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest

from hybridstack.catalog import Catalog, Deployment, Family, Price
from hybridstack.catalog.models import WEEKDAYS, PriceWindow
from hybridstack.cli import main
from hybridstack.errors import CatalogError
from hybridstack.ledger import price_usage
from hybridstack.routing import Router
from hybridstack.testing import offline_stack
from hybridstack.types import ChatRequest, Usage

WED_PEAK = datetime(2026, 12, 2, 2, 30, tzinfo=UTC)  # a Wednesday, 02:30 UTC
WED_OFF_PEAK = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SAT_PEAK_HOUR = datetime(2026, 12, 5, 2, 30, tzinfo=UTC)  # a Saturday


@pytest.fixture(scope="module")
def bundled() -> Catalog:
    return Catalog.default()


# --- tiers ----------------------------------------------------------------------------------


def test_qwen3_max_above_32k_is_billed_at_the_second_tier(bundled: Catalog) -> None:
    price = bundled.deployment("qwen3-max@dashscope-sg").price
    # 40K prompt tokens + 1K out: the whole request at $2.4 / $12, not the base $1.2 / $6
    assert price.cost(40_000, 1_000) == pytest.approx((40_000 * 2.4 + 1_000 * 12.0) / 1e6)
    assert price.cost(40_000, 1_000) > 1.9 * (40_000 * 1.2 + 1_000 * 6.0) / 1e6
    assert price.cost(200_000, 0) == pytest.approx(200_000 * 3.0 / 1e6)
    assert price.cost(1_000, 1_000) == pytest.approx((1_000 * 1.2 + 1_000 * 6.0) / 1e6)


def test_qwen_flash_is_tiered_in_every_region(bundled: Catalog) -> None:
    for dep in bundled.deployments_of("qwen-flash"):
        assert dep.price.tiers, dep.id
        assert dep.price.cost(500_000, 0) > 2 * dep.price.cost(100_000, 0) * 5, dep.id


def test_tier_boundaries_and_cache_rates() -> None:
    price = Price(
        input_per_mtok=1.0, output_per_mtok=4.0, cached_input_per_mtok=0.1, as_of=date(2026, 1, 1),
        tiers=[
            {"above_input_tokens": 1000, "input_per_mtok": 2.0, "output_per_mtok": 8.0},
            {"above_input_tokens": 5000, "input_per_mtok": 3.0, "output_per_mtok": 9.0,
             "cached_input_per_mtok": 0.3},
        ],
    )  # fmt: skip
    assert price.rates(1000) == (1.0, 4.0, 0.1)  # "above" is strict: 1,000 is the base tier
    assert price.rates(1001) == (2.0, 8.0, 2.0)  # a tier without a cache rate: its input rate
    assert price.rates(5001) == (3.0, 9.0, 0.3)
    # input tokens include the cached ones; the tier is chosen by all of them
    expected = (2000 * 3.0 + 4000 * 0.3 + 100 * 9.0) / 1e6
    assert price.cost(6000, 100, 4000) == pytest.approx(expected)
    usage = Usage(input_tokens=6000, output_tokens=100, cached_input_tokens=4000)
    assert price_usage(price, usage) == price.cost(6000, 100, 4000)


def test_tiers_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="increasing order of above_input_tokens"):
        Price(
            input_per_mtok=1, output_per_mtok=1, as_of=date(2026, 1, 1),
            tiers=[{"above_input_tokens": 9, "input_per_mtok": 1, "output_per_mtok": 1},
                   {"above_input_tokens": 3, "input_per_mtok": 1, "output_per_mtok": 1}],
        )  # fmt: skip


# --- time-of-day windows -----------------------------------------------------------------------


def test_deepseek_peak_hours_cost_double_on_weekdays_only(bundled: Catalog) -> None:
    price = bundled.deployment("deepseek-flash@deepseek-cn").price
    off_peak = price.cost(1_000_000, 1_000_000, at=WED_OFF_PEAK)
    assert off_peak == pytest.approx(0.15 + 0.60)
    assert price.cost(1_000_000, 1_000_000, at=WED_PEAK) == pytest.approx(2 * off_peak)
    assert price.cost(1_000_000, 1_000_000, at=SAT_PEAK_HOUR) == pytest.approx(off_peak)
    # 10:00 closes the second window; 09:59 is inside it
    assert price.multiplier(WED_OFF_PEAK.replace(hour=9, minute=59)) == 2.0
    assert price.multiplier(WED_OFF_PEAK.replace(hour=10, minute=0)) == 1.0
    # an aware time in another zone is converted: 10:30 in Beijing is 02:30 UTC (peak)
    beijing = timezone(timedelta(hours=8))
    assert price.multiplier(datetime(2026, 12, 2, 10, 30, tzinfo=beijing)) == 2.0
    # naive datetimes are UTC
    assert price.multiplier(WED_PEAK.replace(tzinfo=None)) == 2.0
    # without a time: the dearest window, so an estimate never under-counts
    assert price.cost(1_000_000, 1_000_000) == pytest.approx(2 * off_peak)


def test_a_window_may_wrap_midnight_and_skip_dates() -> None:
    window = PriceWindow(
        start=time(22), end=time(2), multiplier=0.5, days=["fri"], except_dates=[date(2026, 12, 25)]
    )
    friday = datetime(2026, 12, 4, 23, 0)
    assert window.applies(friday)
    # 01:00 on Saturday belongs to Friday's window
    assert window.applies(friday + timedelta(hours=2))
    assert not window.applies(friday + timedelta(hours=3))  # 02:00 Saturday: closed
    assert not window.applies(friday - timedelta(days=1))  # Thursday 23:00
    christmas_friday = datetime(2026, 12, 25, 23, 0)
    assert not window.applies(christmas_friday)
    price = Price(input_per_mtok=2, output_per_mtok=2, as_of=date(2026, 1, 1), windows=[window])
    assert price.cost(1_000_000, 0, at=friday) == pytest.approx(1.0)
    assert price.cost(1_000_000, 0) == pytest.approx(2.0)  # no time: the dearest (1.0, not 0.5)


def test_day_names_are_forgiving_but_unknown_ones_are_named() -> None:
    window = PriceWindow(start="01:00", end="04:00", multiplier=2, days="weekdays")
    assert window.days == WEEKDAYS[:5]
    assert PriceWindow(start="01:00", end="04:00", multiplier=2, days=["Monday"]).days == ("mon",)
    with pytest.raises(ValueError, match="funday"):
        PriceWindow(start="01:00", end="04:00", multiplier=2, days=["funday"])
    with pytest.raises(ValueError, match="quote times"):
        PriceWindow(start=60, end="04:00", multiplier=2)  # YAML's reading of 1:00
    with pytest.raises(ValueError, match="is empty"):
        PriceWindow(start="01:00", end="01:00", multiplier=2)


# --- every caller goes through Price.cost ---------------------------------------------------


def gen_catalog(window: int = 1_000_000, **prices: Price) -> Catalog:
    """One family "gen", one deployment per site name -> price."""
    family = Family(name="gen", vendor="meta", context_window=window, skills={"general": 0.5})
    deployments = [
        Deployment(
            family="gen", site=site, protocol="openai", model="gen",
            base_url="https://x.example/v1", region="r", jurisdiction="SG", operator=site,
            api_key_env=None, price=price,
        )
        for site, price in prices.items()
    ]  # fmt: skip
    return Catalog(families=[family], deployments=deployments)


def _two_hosts() -> Catalog:
    timed = Price(
        input_per_mtok=0.15, output_per_mtok=0.0, as_of=date(2026, 1, 1),
        windows=[{"start": "01:00", "end": "04:00", "multiplier": 2.0, "days": "weekdays"}],
    )  # fmt: skip
    flat = Price(input_per_mtok=0.25, output_per_mtok=0.0, as_of=date(2026, 1, 1))
    return gen_catalog(peaky=timed, steady=flat)


def test_the_cheapest_plan_is_priced_at_its_time() -> None:
    router = Router(_two_hosts(), policy="cheapest", key_available=lambda d: True, seed=1)
    request = ChatRequest(messages="hello " * 200, max_tokens=10)
    off_peak = router.plan(request, skill="general", at=WED_OFF_PEAK)
    peak = router.plan(request, skill="general", at=WED_PEAK)
    assert off_peak.first.id == "gen@peaky"  # $0.15 beats $0.25 off-peak
    assert peak.first.id == "gen@steady"  # $0.30 at peak does not
    assert peak.priced_at == WED_PEAK
    first = peak.candidates[0]
    assert first.expected_cost_usd == pytest.approx(
        first.deployment.price.cost(first.prompt_tokens, 10, at=WED_PEAK)
    )
    # replay reuses the recorded time
    assert router.replay(peak, request).first.id == "gen@steady"


def test_a_price_cap_judges_the_dearest_hour() -> None:
    router = Router(
        _two_hosts(), key_available=lambda d: True, seed=1,
        constraints={"max_price_per_mtok": 0.27, "price_basis": "input"},
    )  # fmt: skip
    plan = router.plan(ChatRequest(messages="hi"), skill="general", at=WED_OFF_PEAK)
    assert plan.deployment_ids == ["gen@steady"]
    # $0.15 now, but $0.30 at peak: the cap is about what any request may pay
    assert "price $0.30/1M tokens (input) over the maximum" in plan.excluded["gen@peaky"]


def test_a_long_qwen3_max_prompt_is_estimated_at_its_tier(bundled: Catalog) -> None:
    router = Router(bundled, key_available=lambda d: True, seed=1)
    request = ChatRequest(messages="The parcels leave the warehouse before noon. " * 6_000)
    plan = router.plan(request, model="qwen3-max@dashscope-sg")
    cand = plan.candidates[0]
    assert cand.prompt_tokens > 32_768
    rates = cand.deployment.price.rates(cand.prompt_tokens)
    assert rates.input_per_mtok == 2.4
    assert cand.expected_cost_usd == pytest.approx(
        (cand.prompt_tokens * 2.4 + plan.estimated_output_tokens * 12.0) / 1e6
    )


async def test_the_executor_prices_an_attempt_at_its_start_time() -> None:
    # A window on every day but today's: an attempt started now pays the base rate, while
    # a cost computed without the time would take the window's (dearest) rate.
    today = WEEKDAYS[datetime.now(UTC).weekday()]
    other_days = [d for d in WEEKDAYS if d != today]
    windows = [
        {"start": "00:00", "end": "12:00", "multiplier": 3.0, "days": other_days},
        {"start": "12:00", "end": "00:00", "multiplier": 3.0, "days": other_days},
    ]
    price = Price(input_per_mtok=1.0, output_per_mtok=1.0, as_of=date(2026, 1, 1), windows=windows)
    catalog = gen_catalog(100_000, emu=price)
    async with offline_stack(catalog, seed=1) as stack:
        reply = await stack.complete("Say hello", skill="general")
    [attempt] = stack.ledger.attempts()
    usage = attempt.usage
    expected = price.cost(usage.input_tokens, usage.output_tokens, at=attempt.started_at)
    assert attempt.cost_usd == pytest.approx(expected)
    assert reply.cost_usd == pytest.approx(expected)
    assert usage.input_tokens > 0
    if WEEKDAYS[attempt.started_at.astimezone(UTC).weekday()] == today:  # not past midnight
        # the base rate: a third of what a cost without the start time would have said
        dearest = price.cost(usage.input_tokens, usage.output_tokens)
        assert attempt.cost_usd == pytest.approx(dearest / 3)


# --- catalog files -------------------------------------------------------------------------------


TOML_TIERS = """
[deployments."qwen3-max@dashscope-sg"]
override = true
price.input_per_mtok = 1.0
price.output_per_mtok = 5.0
price.as_of = 2026-12-03
price.source = "https://example.com/negotiated"
price.tiers = [{ above_input_tokens = 32768, input_per_mtok = 2.0, output_per_mtok = 10.0 }]
price.windows = [{ start = 22:00:00, end = 06:00:00, multiplier = 0.5, days = ["sat", "sun"] }]
"""

YAML_TIERS = """
deployments:
  qwen3-max@dashscope-sg:
    override: true
    price:
      input_per_mtok: 1.0
      output_per_mtok: 5.0
      as_of: 2026-12-03
      tiers: [{above_input_tokens: 32768, input_per_mtok: 2.0, output_per_mtok: 10.0}]
      windows: [{start: "22:00", end: "06:00", multiplier: 0.5, days: [sat, sun]}]
"""

JSON_TIERS = json.dumps(
    {
        "deployments": {
            "qwen3-max@dashscope-sg": {
                "override": True,
                "price": {
                    "input_per_mtok": 1.0,
                    "output_per_mtok": 5.0,
                    "as_of": "2026-12-03",
                    "tiers": [
                        {
                            "above_input_tokens": 32768,
                            "input_per_mtok": 2.0,
                            "output_per_mtok": 10.0,
                        }
                    ],
                    "windows": [
                        {
                            "start": "22:00",
                            "end": "06:00",
                            "multiplier": 0.5,
                            "days": ["sat", "sun"],
                        }
                    ],
                },
            }
        }
    }
)


@pytest.mark.parametrize(
    ("suffix", "text"), [(".toml", TOML_TIERS), (".yaml", YAML_TIERS), (".json", JSON_TIERS)]
)
def test_user_files_carry_tiers_and_windows(
    bundled: Catalog, tmp_path: Path, suffix: str, text: str
) -> None:
    path = tmp_path / f"mine{suffix}"
    path.write_text(text, encoding="utf-8")
    price = bundled.with_file(path).deployment("qwen3-max@dashscope-sg").price
    assert price.cost(40_000, 0) == pytest.approx(40_000 * 2.0 / 1e6)
    saturday_night = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)
    assert price.cost(1_000, 0, at=saturday_night) == pytest.approx(1_000 * 0.5 / 1e6)


@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ("price.tiers = [{ above_input_tokens = 32768, input_per_mtok = -2.0, "
         "output_per_mtok = 1.0 }]",
         "price.tiers[0].input_per_mtok", "must be >= 0"),
        ("price.tiers = [{ above = 32768, input_per_mtok = 2.0, output_per_mtok = 1.0 }]",
         "price.tiers[0].above", "unknown field 'above'"),
        ("price.tiers = [{ above_input_tokens = 9, input_per_mtok = 1, output_per_mtok = 1 }, "
         "{ above_input_tokens = 3, input_per_mtok = 1, output_per_mtok = 1 }]",
         "price.tiers", "increasing order"),
        ('price.windows = [{ start = "25:00", end = 04:00:00, multiplier = 2.0 }]',
         "price.windows[0].start", "expected a UTC time"),
        ("price.windows = [{ start = 01:00:00, multiplier = 2.0 }]",
         "price.windows[0].end", "is required"),
        ('price.windows = [{ start = 01:00:00, end = 04:00:00, multiplier = 2.0, '
         'days = ["funday"] }]',
         "price.windows[0].days[0]", "funday"),
    ],
)  # fmt: skip
def test_bad_tiers_and_windows_name_the_file_entry_and_field(
    bundled: Catalog, tmp_path: Path, body: str, field: str, says: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[deployments."qwen3-max@dashscope-sg"]\noverride = true\n'
        "price.input_per_mtok = 1.0\nprice.output_per_mtok = 5.0\nprice.as_of = 2026-12-03\n"
        + body + "\n",
        encoding="utf-8",
    )  # fmt: skip
    with pytest.raises(CatalogError) as info:
        bundled.with_file(path)
    message = str(info.value)
    assert str(path) in message
    assert "deployments.qwen3-max@dashscope-sg" in message
    assert f"field '{field}'" in message
    assert says in message


def test_sources_of_the_prices_changed_here_point_at_something_that_exists(
    bundled: Catalog,
) -> None:
    for dep_id in (
        "qwen3-max@dashscope-cn", "qwen3-max@dashscope-sg", "qwen-flash@dashscope-cn",
        "qwen-flash@dashscope-sg", "qwen-flash@dashscope-us", "deepseek-flash@deepseek-cn",
        "deepseek-v4-pro@deepseek-cn", "llama-3.3-70b@openrouter",
        "qwen3-coder-next@openrouter", "gpt-4o-mini@openai-us", "gpt-4o-mini@openai-eu",
    ):  # fmt: skip
        source = bundled.deployment(dep_id).price.source
        assert "https://" in source, dep_id
        assert "providers.md" not in source, dep_id  # not shipped: a reader cannot open it


# --- what a user sees -----------------------------------------------------------------------------


def test_models_marks_tiered_and_timed_prices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--jurisdiction", "CN"]) == 0
    out = capsys.readouterr().out
    assert "+ base tier: longer prompts pay more" in out
    assert "* off-peak rate: peak hours cost more" in out
    assert main(["models", "--jurisdiction", "CN", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["qwen3-max@dashscope-cn"]["price_tiers"][0]["above_input_tokens"] == 32768
    window = rows["deepseek-flash@deepseek-cn"]["price_windows"][0]
    assert window["start"] == "01:00:00"
    assert window["multiplier"] == 2.0
    assert rows["qwen-plus@dashscope-cn"]["price_tiers"] == []


def test_route_shows_how_the_prompt_was_counted(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["route", "--skill", "multilingual", "请把这句话翻译成英文：明天上午十点开会。"]) == 0
    )
    out = capsys.readouterr().out
    assert "(tokenizer:qwen)" in out
    assert "estimate:script-aware" in out
