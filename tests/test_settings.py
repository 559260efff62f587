"""Settings: defaults, the config file, environment overrides and the errors that name their source."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.settings import ConfigError, load_settings

KEY = "a-pseudonym-key-for-settings-tests-0123456789"


def test_load_settings_without_config_or_env_gives_the_documented_defaults():
    settings = load_settings(env={})
    assert settings.lake == Path("./lake")
    assert settings.spark_master == "local[*]"
    assert (settings.lookup.endpoint, settings.lookup.id_param, settings.lookup.name_param) == (
        "/api/v1/healthkit/lookup",
        "id",
        "name",
    )
    assert settings.min_event_time == datetime(2000, 1, 1, tzinfo=timezone.utc)
    assert settings.max_future_skew == timedelta(hours=24)
    assert settings.max_line_bytes == 65536
    assert (settings.quarantine_warn_share, settings.quarantine_fail_share) == (0.01, 0.20)
    assert settings.pseudonym_key is None
    assert settings.codegen_min_bytes == 64 * 2**20
    assert settings.driver_java_options == "-XX:+UseSerialGC"


def test_load_settings_merges_a_partial_config_over_the_defaults(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'[lake]\npath = "{tmp_path}/lk"\n[spark]\nmaster = "local[1]"\n[lookup]\nid_param = "idno"\n')
    settings = load_settings(config, env={})
    assert settings.lake == tmp_path / "lk"
    assert settings.spark_master == "local[1]"
    assert settings.lookup.id_param == "idno"
    assert settings.lookup.name_param == "name"  # untouched keys keep their defaults
    assert settings.shuffle_partitions == 8


def test_load_settings_reads_the_config_named_by_enumwatch_config(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[lake]\nkeep_versions = 5\n")
    assert load_settings(env={"ENUMWATCH_CONFIG": str(config)}).keep_versions == 5


def test_load_settings_lets_environment_override_the_config_file(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[lake]\npath = "/from/config"\n[spark]\nmaster = "local[4]"\n')
    env = {
        "ENUMWATCH_LAKE": str(tmp_path / "from-env"),
        "SPARK_MASTER": "local[1]",
        "ENUMWATCH_KEY_FILE": str(tmp_path / "k.key"),
        "ENUMWATCH_PSEUDONYM_KEY": KEY,
    }
    settings = load_settings(config, env=env)
    assert settings.lake == tmp_path / "from-env"
    assert settings.spark_master == "local[1]"
    assert settings.key_file == tmp_path / "k.key"
    assert settings.pseudonym_key == KEY


def test_settings_repr_never_shows_the_pseudonym_key():
    settings = load_settings(env={"ENUMWATCH_PSEUDONYM_KEY": KEY})
    assert KEY not in repr(settings)
    assert KEY not in str(settings)


def test_with_overrides_skips_unset_values_and_replaces_set_ones(tmp_path):
    settings = load_settings(env={})
    changed = settings.with_overrides(lake=None, shuffle_partitions=1, key_file=tmp_path / "k")
    assert changed.lake == settings.lake
    assert changed.shuffle_partitions == 1
    assert changed.key_file == tmp_path / "k"


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[ingest]\nquarantine_warn_share = 0.5\nquarantine_fail_share = 0.1\n", "quarantine_warn_share"),
        ("[ingest]\nquarantine_fail_share = 1.5\n", "quarantine_fail_share"),
        ('[ingest]\nmin_event_time = "last tuesday"\n', "ingest.min_event_time"),
        ('[ingest]\nmin_event_time = "2000-01-01T00:00:00"\n', "UTC offset"),
        ("[lake\npath = 1\n", "c.toml"),
    ],
    ids=[
        "warn-share-above-fail-share",
        "fail-share-above-one",
        "time-that-is-not-iso-8601",
        "time-without-offset-is-ambiguous",
        "broken-toml-names-the-file",
    ],
)
def test_load_settings_rejects_a_bad_config_naming_file_and_key(tmp_path, toml, message):
    config = tmp_path / "c.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError, match=message) as info:
        load_settings(config, env={})
    assert str(config) in str(info.value)


def test_load_settings_names_a_config_file_that_does_not_exist(tmp_path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_settings(missing, env={})
    assert str(missing) in str(info.value)


def test_load_settings_reads_a_config_with_a_bom_and_crlf_and_warns_about_the_bom(tmp_path):
    config = tmp_path / "c.toml"
    config.write_bytes(b"\xef\xbb\xbf[lake]\r\nkeep_versions = 3\r\n")
    settings = load_settings(config, env={})
    assert settings.keep_versions == 3
    assert settings.warnings == (f"{config}:1: UTF-8 byte-order mark ignored",)


def test_load_settings_warns_about_an_unknown_setting_and_a_quoted_number(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('[lake]\nkeep_version = 3\n[spark]\nshuffle_partitions = "4"\n[lakes]\npath = "x"\n')
    settings = load_settings(config, env={})
    assert settings.shuffle_partitions == 4 and settings.keep_versions == 2
    assert settings.warnings == (
        f"{config}: unknown setting 'lake.keep_version' ignored",
        f"{config}: 'spark.shuffle_partitions' is a quoted number '4'; read as a number",
        f"{config}: unknown setting 'lakes' ignored",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[lake]\nkeep_versions = "two"\n', "'lake.keep_versions' must be a number, not 'two'"),
        ("[ingest]\nquarantine_fail_share = true\n", "'ingest.quarantine_fail_share' must be a number"),
        ("[spark]\nmaster = 4\n", "'spark.master' must be a quoted string"),
        ('lake = "/data/lake"\n', "'lake' must be a table"),
        ("[lake]\nkeep_versions = 2\nkeep_versions = 3\n", "Cannot overwrite a value (at line 3"),
    ],
    ids=["non-numeric-number", "bool-for-a-number", "number-for-a-string", "value-for-a-table", "key-twice"],
)
def test_load_settings_refuses_a_setting_of_the_wrong_kind_in_one_line_naming_it(tmp_path, text, message):
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert str(info.value).startswith(f"{config}: ") and message in str(info.value)
    assert "\n" not in str(info.value)
