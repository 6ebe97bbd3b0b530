"""Where the CLI connects and with which key: flag, then environment, then the `mcpmesh login` file, then defaults."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_URL = "https://127.0.0.1:8443"
# The launcher's local CA (services/launcher/certificates.py), found when the CLI runs next to `make up`.
LOCAL_CA = Path(".mcpmesh") / "tls" / "ca.crt"


def config_path() -> Path:
    """MCPMESH_CONFIG, else $XDG_CONFIG_HOME/mcpmesh/config.json (~/.config/mcpmesh/config.json)."""
    if os.environ.get("MCPMESH_CONFIG"):
        return Path(os.environ["MCPMESH_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mcpmesh" / "config.json"


def token_cache_path() -> Path | None:
    """MCPMESH_TOKEN_CACHE ("off" keeps none), else $XDG_CACHE_HOME/mcpmesh/tokens.json (~/.cache/...)."""
    chosen = os.environ.get("MCPMESH_TOKEN_CACHE", "")
    if chosen == "off":
        return None
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mcpmesh" / "tokens.json"


@dataclass(frozen=True)
class Settings:
    """The edge URL, the API key and the CA bundle that verifies the edge's certificate ("" = system CAs)."""

    url: str = ""
    api_key: str = ""
    ca_cert: str = ""

    def verify(self) -> bool | str:
        if self.ca_cert:
            return self.ca_cert
        return str(LOCAL_CA.resolve()) if self.url.startswith("https://") and LOCAL_CA.is_file() else True


def load_file(path: Path) -> Settings:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as error:
        raise SystemExit(f"error: cannot read the CLI config {path}: {error}. Fix or delete it, then run `mcpmesh login`.") from error
    if not isinstance(data, dict):
        raise SystemExit(f"error: the CLI config {path} is not a JSON object. Delete it and run `mcpmesh login`.")
    return Settings(**{k: str(v) for k, v in data.items() if k in Settings.__dataclass_fields__})


def resolve(url: str | None, api_key: str | None, ca_cert: str | None, path: Path | None = None) -> Settings:
    """Each value from the first place that has it: flag, environment, config file, default."""
    saved = load_file(path or config_path())
    return Settings(
        url=(url or os.environ.get("MCPMESH_URL") or saved.url or DEFAULT_URL).rstrip("/"),
        api_key=api_key or os.environ.get("MCP_API_KEY") or saved.api_key,
        ca_cert=ca_cert or os.environ.get("MCPMESH_CA_CERT") or saved.ca_cert,
    )


def save(settings: Settings, path: Path | None = None) -> Path:
    """Writes the config with mode 0600 from the start: it holds a key."""
    target = path or config_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(asdict(settings), out, indent=2)
    os.chmod(target, 0o600)
    return target
