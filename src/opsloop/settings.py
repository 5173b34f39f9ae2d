"""One settings object, read from ``OPSLOOP_*`` environment variables or given in code.

Nothing in opsloop reads the environment anywhere else: components receive a
``Settings`` and keep it, so a test or an embedding application can run several
differently-configured stores in one process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Where opsloop keeps things and how it talks to a server.

    - ``home``: the folder of the embedded default (``~/.opsloop``).
    - ``database_url``: SQLAlchemy URL; default is SQLite in ``home``. PostgreSQL:
      ``postgresql+psycopg://user@host/db``.
    - ``artifact_uri``: a local folder (default ``home/artifacts``) or ``s3://bucket/prefix``.
    - ``tracking_uri``: ``http(s)://host:port`` makes the SDK talk to a server;
      unset, the SDK works embedded on ``home``.
    - ``user``: the acting user (``OPSLOOP_USER``); unset, the OS user.
    """

    model_config = SettingsConfigDict(env_prefix="OPSLOOP_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".opsloop")
    database_url: str | None = None
    artifact_uri: str | None = None
    tracking_uri: str | None = None
    # Who acts (``OPSLOOP_USER``): recorded on runs, versions, alias moves and events;
    # unset, the operating-system user (see ``opsloop.core.resolve_user``).
    user: str | None = None
    # An API token (``OPSLOOP_TOKEN``, ``ols_...``) the SDK and CLI send to a server as
    # ``Authorization: Bearer``; see docs/governance.md.
    token: str | None = Field(default=None, repr=False)
    # ``OPSLOOP_AUTH=1``: the server authenticates every request (API tokens) and checks
    # each route's permission rule; off by default (a local server stays open).
    auth: bool = False
    # ``OPSLOOP_SECRET_KEY``: the server key stored provider secrets are encrypted with
    # (``opsloop secrets set``); unset, they are stored in plain text, readable only by you.
    secret_key: str | None = Field(default=None, repr=False)
    # ``OPSLOOP_AUDIT``: record every successful change in the hash-chained audit trail;
    # unset, on exactly when ``auth`` is.
    audit: bool | None = None
    # UI sign-in (docs/governance.md#signing-in-to-the-web-ui): a session lasts at most
    # ``session_ttl_s`` and ends after ``session_idle_s`` without a request.
    session_ttl_s: float = Field(default=12 * 3600.0, gt=0, le=30 * 86400)
    session_idle_s: float = Field(default=2 * 3600.0, gt=0)
    # OpenID Connect sign-in (authorization code with PKCE): the provider's issuer URL,
    # this server's client id and secret there, and the callback URL registered with it
    # (unset: the request's own ``/auth/oidc/callback``).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = Field(default=None, repr=False)
    oidc_redirect_url: str | None = None
    oidc_scopes: str = "openid email profile"
    # Who may sign in with OIDC and as what (``OPSLOOP_OIDC_ROLES``, JSON): a verified
    # email, ``@domain`` or subject -> ``role`` or ``user:role``. Anyone else gets
    # ``oidc_default_role``; unset, they are refused.
    oidc_roles: dict[str, str] = Field(default_factory=dict)
    oidc_default_role: Literal["viewer", "editor", "admin", "owner"] | None = None
    # Retention (docs/governance.md#retention), run by ``opsloop server`` every
    # ``retention_interval_s`` in batches of ``retention_batch`` rows: traces, prediction
    # log rows, and request bodies (span inputs and outputs, logged predict inputs and
    # outputs) older than so many days are deleted (bodies: emptied, the rows kept).
    # Unset: kept forever. ``OPSLOOP_RETENTION_SCHEDULER=0`` leaves a server's runs off.
    retention_traces_days: float | None = Field(default=None, gt=0)
    retention_predictions_days: float | None = Field(default=None, gt=0)
    retention_bodies_days: float | None = Field(default=None, gt=0)
    retention_interval_s: float = Field(default=3600.0, gt=0)
    retention_batch: int = Field(default=1000, ge=1, le=100_000)
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # Vector indexes (opsloop.retrieval): the backend of new indexes, ``faiss`` (in memory,
    # files under home/indexes) or ``lance`` (LanceDB: vectors stay on disk or in S3),
    # and where ``lance`` keeps them: unset, home/indexes; or ``s3://bucket/prefix``.
    index_backend: Literal["faiss", "lance"] = "faiss"
    index_uri: str | None = None
    # A Redis this deployment relies on (``OPSLOOP_REDIS_URL``); `opsloop doctor` checks it.
    redis_url: str | None = None
    # ``OPSLOOP_DEBUG=1``: a failing command shows its traceback (else one error line).
    debug: bool = False

    # REST server limits: bad input gets a 4xx, never a 500 and never a partial write.
    max_request_bytes: int = 32 * 1024 * 1024
    max_artifact_bytes: int = 5 * 1024 * 1024 * 1024
    max_batch_metrics: int = 200_000
    max_batch_params: int = 1_000
    max_batch_tags: int = 1_000

    # SDK metric batching.
    flush_interval_s: float = 2.0
    flush_max_points: int = 50_000
    system_metrics_interval_s: float = 10.0

    # Tracing: masking applied to spans before they are stored or sent; built-in
    # names (email, api_key, bearer, credit_card, all) or regular expressions.
    trace_mask_patterns: list[str] = Field(default_factory=list)
    # ``OPSLOOP_PII_MASKING=0``: the server stores prediction rows posted to
    # ``/monitoring/ingest`` as sent; by default it masks PII in them first (``opsloop
    # serve`` masks its own rows before they leave the process either way).
    pii_masking: bool = True

    # Remote client.
    http_timeout_s: float = 30.0
    http_retries: int = 3

    # LLM providers (opsloop.llm): the default model spec, and an OpenAI-compatible
    # endpoint; the key can also live in <home>/secrets.json (`opsloop secrets set`).
    llm_default_model: str = "local:smollm2"
    llm_base_url: str | None = None
    llm_api_key: str | None = Field(default=None, repr=False)
    llm_timeout_s: float = 60.0
    llm_max_retries: int = 2

    # Standard benchmarks (opsloop.evaluation.benchmarks): the folder of their data files;
    # unset, ../shared/benchdata beside a source checkout is used when it exists.
    benchdata: Path | None = None

    @field_validator("oidc_roles")
    @classmethod
    def _check_oidc_roles(cls, v: dict[str, str]) -> dict[str, str]:
        for who, target in v.items():
            role = target.rpartition(":")[2]
            if not who or role not in ("viewer", "editor", "admin", "owner"):
                raise ValueError(
                    f"oidc_roles: {who!r} -> {target!r}: give a role (viewer, editor, admin, "
                    "owner) or user:role"
                )
        return {k.lower() if "@" in k else k: t for k, t in v.items()}

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, v: object) -> object:
        if isinstance(v, str):
            return Path(v).expanduser()
        if isinstance(v, Path):
            return v.expanduser()
        return v

    @property
    def resolved_database_url(self) -> str:
        """The database URL in force: the given one, or SQLite under ``home``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'opsloop.db').resolve()}"

    @property
    def resolved_artifact_uri(self) -> str:
        """The artifact location in force: the given one, or ``home/artifacts``."""
        if self.artifact_uri:
            return self.artifact_uri
        return str((self.home / "artifacts").resolve())

    @property
    def audit_on(self) -> bool:
        """Whether changes go into the audit trail: ``audit``, else (unset) ``auth``."""
        return self.auth if self.audit is None else self.audit

    @property
    def is_remote(self) -> bool:
        """True when the SDK should talk to a server over HTTP."""
        return bool(self.tracking_uri) and str(self.tracking_uri).startswith(
            ("http://", "https://")
        )
