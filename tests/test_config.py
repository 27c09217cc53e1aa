import pytest

from core.config import Config, ConfigError, default_config_text, parse_config


def test_default_text_parses_to_the_default_policy():
    parsed = parse_config(default_config_text("UTC"))
    assert parsed.policy() == Config().policy()
    assert parsed.hash == Config().hash


def test_comments_and_order_do_not_change_the_hash():
    a = parse_config('language = "zh"\n[send]\nattribution_days = 5\n')
    b = parse_config('# hi\n[send]\nattribution_days = 5 # x\n\nlanguage = "zh"\n'.replace(
        '[send]\nattribution_days = 5 # x\n\nlanguage = "zh"\n', 'language = "zh"\n[send]\nattribution_days = 5 # x\n'))
    assert a.hash == b.hash
    assert a.hash != Config().hash


@pytest.mark.parametrize(
    "text, expected",
    [
        ('timezone = "Mars/Olympus"', "line 1: timezone: unknown time zone"),
        ("[rfm]\nf_cutoffs = [2, 2, 4, 6]", "line 2: rfm.f_cutoffs: must be strictly increasing"),
        ("[rfm]\nlookback_days = 0", "line 2: rfm.lookback_days: must be between 1 and 36,500"),
        ("[rfm]\nlookback_days = 740000", "line 2: rfm.lookback_days: must be between 1 and 36,500, got 740000"),
        ("[rfm]\nr_fallback_days = [30, 90, 180, 99999]", "line 2: rfm.r_fallback_days: expected 4 positive"),
        ("[send]\ndrop_tolerance = nan", "line 2: send.drop_tolerance: expected a finite number, got nan"),
        ("[tags]\nprice_sensitive_share = 1" + "0" * 400, "line 2: tags.price_sensitive_share: must be between"),
        ("[tags]\nquality_aov_multiple = inf", "line 2: tags.quality_aov_multiple: expected a finite number"),
        ("[tags]\nhigh_value_min_m_score = 6", "line 2: tags.high_value_min_m_score: must be between 1 and 5"),
        ('[[caps]]\nsegment = "champions"\nmax = 1', "line 2: caps[0].segment: no segment 'champions' in the "
                                                    "model 'rf11' (did you mean 'Champions'?)"),
        ('[rfm]\nmodel = "cn8"\n[[caps]]\nsegment = "Champions"\nmax = 1',
         "line 4: caps[0].segment: no segment 'Champions' in the model 'cn8'"),
        ('[rfm]\nmodel = "nope"', "line 2: rfm.model: unknown model 'nope'"),
        ('[[caps]]\nchannel = "sms"\nmax = 1\nper = "fortnight"', "line 4: caps[0].per: expected one of day, week, month"),
        ('[[caps]]\nchannel = "sms"\nper = "day"', "caps[0].max: missing"),
        ('[quiet_hours]\nstart = "9pm"', "line 2: quiet_hours.start: expected a time as HH:MM"),
        ("[send]\ndrop_tolerance = 2", "line 2: send.drop_tolerance: must be between 0.0 and 1.0"),
        ("[lifecycle]\ndormant_days = 100", "lifecycle.churned_days: must be greater than dormant_days"),
        ('[delivery]\nwebhook_url = "ftp://x"', "line 2: delivery.webhook_url: expected an http"),
        ('[delivery]\nwebhook_url = "http://127.0.0.1:99999/"', "line 2: delivery.webhook_url: not a usable URL"),
        ('[delivery]\nwebhook_url = "http://[::1"', "line 2: delivery.webhook_url: not a usable URL"),
        ('[delivery]\nwebhook_url = "http:///hook"', "line 2: delivery.webhook_url: expected an http"),
        ('[[segments.mine]]\nname = "VIP"\nr = "5-4"', "line 3: segments.mine[0].r: range runs backwards"),
        ("language = ", "not valid TOML"),
    ],
)
def test_each_bad_value_is_named_with_its_line(text, expected):
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_a_cap_names_a_segment_of_the_model_in_either_language():
    caps = parse_config('[[caps]]\nsegment = "冠军客户"\nmax = 1\n[[caps]]\nsegment = "Loyal"\nmax = 2').caps
    assert [cap.segment for cap in caps] == ["Champions", "Loyal"]
    custom = parse_config('[rfm]\nmodel = "mine"\n[[segments.mine]]\nname = "VIP"\nr = "5"\n'
                          '[[caps]]\nsegment = "VIP"\nmax = 1\n[[caps]]\nsegment = "Other"\nmax = 1')
    assert [cap.segment for cap in custom.caps] == ["VIP", "Other"]


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        parse_config('language = "fr"\nbogus = 1\n[tags]\ncart_days = "x"\n')
    assert len(caught.value.problems) == 3


def test_custom_map_warns_about_overlaps_and_gaps_by_cell():
    config = parse_config(
        '[rfm]\nmodel = "mine"\n'
        '[[segments.mine]]\nname = "Top"\nr = "4-5"\nf = "4-5"\n'
        '[[segments.mine]]\nname = "Recent"\nr = "5"\n'
    )
    assert config.rfm.model == "mine"
    overlap, gap = config.warnings
    assert "R5F4-5 (Top > Recent)" in overlap
    assert gap.endswith("R1F1-5, R2F1-5, R3F1-5, R4F1-3")
