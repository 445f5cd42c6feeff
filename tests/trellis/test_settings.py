"""Settings: read from TRELLIS_* variables and an optional TOML file; one clear line when wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from trellis.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("TRELLIS_"):
            monkeypatch.delenv(name)


def test_defaults_need_no_configuration() -> None:
    settings = load_settings()
    assert settings.database_url.startswith("sqlite+aiosqlite://")
    assert settings.max_body_bytes == 1024 * 1024
    assert not settings.has_trello_credentials


def test_values_come_from_trellis_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_MAX_BODY_BYTES", "2048")
    monkeypatch.setenv("TRELLIS_CALLBACK_URL", "https://hooks.example.com/webhooks/trello")
    settings = load_settings()
    assert settings.max_body_bytes == 2048
    assert settings.callback_url == "https://hooks.example.com/webhooks/trello"


def test_callback_url_is_kept_exactly_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_CALLBACK_URL", "https://Hooks.example.com:443/webhooks/trello/")
    assert load_settings().callback_url == "https://Hooks.example.com:443/webhooks/trello/"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRELLIS_MAX_BODY_BYTES", "lots"),
        ("TRELLIS_MAX_BODY_BYTES", "0"),
        ("TRELLIS_PORT", "70000"),
        ("TRELLIS_REDIS_URL", "http://127.0.0.1:6379"),
        ("TRELLIS_DATABASE_URL", "sqlite:///sync-driver.db"),
        ("TRELLIS_CALLBACK_URL", "/webhooks/trello"),
        ("TRELLIS_LOG_FORMAT", "xml"),
        ("TRELLIS_REDIS_SENTINELS", "sentinel-0:26379,sentinel-1:port"),
        ("TRELLIS_REDIS_MIN_REPLICAS", "-1"),
    ],
)
def test_bad_value_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert variable in message
    assert "\n" not in message


def test_settings_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "trellis.toml"
    config.write_text('max_body_bytes = 4096\nqueue_name = "from-file"\n')
    monkeypatch.setenv("TRELLIS_CONFIG_FILE", str(config))
    monkeypatch.setenv("TRELLIS_QUEUE_NAME", "from-env")
    settings = load_settings()
    assert settings.max_body_bytes == 4096
    assert settings.queue_name == "from-env"


def test_unknown_key_in_settings_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "trellis.toml"
    config.write_text("max_body_byte = 4096\n")
    monkeypatch.setenv("TRELLIS_CONFIG_FILE", str(config))
    with pytest.raises(SettingsError, match="TRELLIS_MAX_BODY_BYTE: not a known setting"):
        load_settings()


def test_missing_settings_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRELLIS_CONFIG_FILE", str(tmp_path / "absent.toml"))
    with pytest.raises(SettingsError, match="TRELLIS_CONFIG_FILE: no such file"):
        load_settings()


def test_secrets_are_masked_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    key, token = "abcdef12" * 4, "ATTA" + "0123abcd" * 8 + "ABCDEF12"  # shaped as Trello issues them
    monkeypatch.setenv("TRELLIS_TRELLO_API_KEY", key)
    monkeypatch.setenv("TRELLIS_TRELLO_TOKEN", token)
    monkeypatch.setenv("TRELLIS_TRELLO_SECRET", "secret-abcdef123456")
    settings = load_settings()
    shown = repr(settings) + str(settings) + str(settings.model_dump())
    for secret in (key, token, "secret-abcdef123456"):
        assert secret not in shown
    assert settings.has_trello_credentials


def test_invalid_secret_value_is_not_echoed_in_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_TRELLO_TOKEN", "sekrit-token-value")
    monkeypatch.setenv("TRELLIS_PORT", "not-a-port")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert "sekrit-token-value" not in str(raised.value)


def test_the_redis_password_joins_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_REDIS_URL", "rediss://redis.internal:6380/2")
    monkeypatch.setenv("TRELLIS_REDIS_PASSWORD", "p@ss/word")
    settings = load_settings()
    assert settings.redis_url == "rediss://:p%40ss%2Fword@redis.internal:6380/2"
    assert "p@ss/word" in settings.secret_values()


def test_a_password_in_the_url_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_REDIS_URL", "redis://:given@redis:6379/0")
    monkeypatch.setenv("TRELLIS_REDIS_PASSWORD", "other")
    assert load_settings().redis_url == "redis://:given@redis:6379/0"


def test_sentinels_name_the_primary_and_the_url_gives_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRELLIS_REDIS_URL", "rediss://redis/3")
    monkeypatch.setenv("TRELLIS_REDIS_PASSWORD", "primary-secret")
    monkeypatch.setenv("TRELLIS_REDIS_SENTINELS", "sentinel-0:26379, sentinel-1:26380,sentinel-2")
    monkeypatch.setenv("TRELLIS_REDIS_SENTINEL_MASTER", "trellis")
    monkeypatch.setenv("TRELLIS_REDIS_SENTINEL_PASSWORD", "sentinel-secret")
    monkeypatch.setenv("TRELLIS_REDIS_MIN_REPLICAS", "1")
    target = load_settings().redis_target()
    assert target.sentinels == (("sentinel-0", 26379), ("sentinel-1", 26380), ("sentinel-2", 26379))
    assert (target.sentinel_master, target.sentinel_password, target.min_replicas) == (
        "trellis",
        "sentinel-secret",
        1,
    )
    assert "secret" not in target.describe() + repr(target)
    assert "sentinel-secret" in load_settings().secret_values()


def test_a_single_redis_waits_for_no_replica_by_default() -> None:
    target = load_settings().redis_target()
    assert (target.sentinels, target.min_replicas) == ((), 0)
