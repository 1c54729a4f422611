from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from web.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"


def _keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        key = info.alias or name
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys |= _keys(annotation, f"{prefix}{key}.")
        else:
            keys.add(prefix + key)
    return keys


def _toml_keys(data: dict[str, object], prefix: str = "") -> set[str]:
    keys: set[str] = set()
    for key, value in data.items():
        if isinstance(value, dict):
            keys |= _toml_keys(value, f"{prefix}{key}.")
        else:
            keys.add(prefix + key)
    return keys


def test_example_config_validates_and_documents_every_setting() -> None:
    data = tomllib.loads(EXAMPLE.read_text())
    assert _toml_keys(data) == _keys(Settings)
    assert load_settings(EXAMPLE, environ={}) == Settings()


def test_example_config_values_are_the_defaults() -> None:
    assert load_settings(EXAMPLE, environ={}).model_dump() == Settings().model_dump()


def test_no_config_gives_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CLIENTVAULT_CONFIG", raising=False)
    settings = load_settings(environ={})
    assert settings.storage.backend == "local"
    assert settings.database_url == "sqlite+aiosqlite:///clientvault-data/clientvault.db"
    assert settings.keys_path == Path("clientvault-data/keys.json")


def test_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[server]\nport = 9000\n[smtp]\nfrom = "A <a@b.c>"\n')
    settings = load_settings(
        config,
        environ={
            "CLIENTVAULT__SERVER__PORT": "9100",
            "CLIENTVAULT__DATA_DIR": "/srv/cv",
            "CLIENTVAULT__STORAGE__PATH_STYLE": "false",
            "CLIENTVAULT__SMTP__FROM": "B <b@c.d>",
            "UNRELATED": "x",
        },
    )
    assert settings.server.port == 9100
    assert settings.data_dir == Path("/srv/cv")
    assert settings.storage.path_style is False
    assert settings.smtp.from_ == "B <b@c.d>"


def test_config_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[server]\nport = 9200\n")
    monkeypatch.setenv("CLIENTVAULT_CONFIG", str(config))
    assert load_settings().server.port == 9200


@pytest.mark.parametrize(
    ("text", "environ", "needle"),
    [
        ("[server]\nprot = 1\n", {}, "server.prot"),
        ("[storage]\nbackend = 'ftp'\n", {}, "storage.backend"),
        ("[servr]\nport = 1\n", {}, "servr"),
        ("", {"CLIENTVAULT__SERVER__PROT": "1"}, "server.prot"),
        ("", {"CLIENTVAULT__SERVER__PORT": "eighty"}, "server.port"),
        ("", {"CLIENTVAULT__A__B__C": "1"}, "CLIENTVAULT__A__B__C"),
        ("port = [", {}, "c.toml"),
    ],
)
def test_typos_and_bad_values_are_errors(
    tmp_path: Path, text: str, environ: dict[str, str], needle: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=needle.replace(".", r"\.")):
        load_settings(config, environ=environ)


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "s3.secret"
    secret.write_text("s3cr3t\n")
    settings = load_settings(
        None, environ={"CLIENTVAULT__STORAGE__SECRET_ACCESS_KEY_FILE": str(secret)}
    )
    assert settings.s3_secret() == "s3cr3t"
    assert "s3cr3t" not in repr(
        load_settings(None, environ={"CLIENTVAULT__STORAGE__SECRET_ACCESS_KEY": "s3cr3t"})
    )


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})
