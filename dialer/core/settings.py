"""Service settings, read from the environment (prefix `DIALER_`). Nothing connects here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.callback_urls import DEFAULT_CONNECTION_OVERRIDES, check_overrides

LogFormat = Literal["json", "text"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DIALER_", extra="ignore")

    # The embedded default is a SQLite file; production sets a postgresql+asyncpg URL.
    database_url: str = "sqlite+aiosqlite:///./dialer.db"
    # PostgreSQL only: the schema to work in (search_path). Tests and benches use their own.
    database_schema: str | None = None
    # Log every SQL statement at INFO (debugging only; warned at start). Parameters are
    # never logged and the lines are masked like any other, but the volume is large.
    database_echo: bool = False

    # The address `dialer serve` listens on (the container image sets 0.0.0.0).
    host: str = "127.0.0.1"
    # The port `dialer serve` listens on (`--port` overrides it).
    port: int = 8000

    # Uploads larger than this are refused with 413.
    max_upload_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    # Any other request body (JSON) larger than this is refused with 413 before it is read.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # Rows an import reads before it writes them as one batch.
    import_batch_size: int = Field(default=1000, ge=1)
    # An API key verified against the database is trusted this long by the process that
    # read it, without reading it again; a revoked key is refused at once by the process
    # that revoked it, within this many seconds by every other. 0: read every request.
    api_key_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    # PostgreSQL connections one `dialer serve` process keeps open, all of them held between
    # requests (SQLAlchemy's default, 5 kept and 10 more opened and closed around each
    # burst, reconnected on every other request under load). Requests beyond it wait.
    api_database_connections: int = Field(default=15, ge=1, le=500)
    # Default region for phone numbers written without a country code.
    default_country: str = "US"
    # Per-case changes listed by a simulation before it reports `truncated`.
    simulate_change_limit: int = Field(default=200, ge=0)
    # The largest page a list endpoint returns.
    page_size_max: int = Field(default=500, ge=1)

    # --- operations (dialer.observability) ---
    # The least severe log level written.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # json: one object per line, for collectors; text: for a terminal. Both are masked.
    log_format: LogFormat = "json"
    # One INFO line per HTTP request from `dialer serve` (uvicorn's access log). Off by
    # default: at thousands of Twilio callbacks a second it is mostly noise; metrics count.
    access_log: bool = False
    # Serve Prometheus metrics at /metrics (unauthenticated: keep it off the public side).
    metrics_enabled: bool = True
    # `dialer worker` serves /metrics on this port (0: no metrics endpoint).
    worker_metrics_port: int = Field(default=9100, ge=0, le=65535)

    @field_validator("twilio_connection_overrides")
    @classmethod
    def _known_overrides(cls, value: str) -> str:
        return check_overrides(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_upper_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    # --- Twilio webhooks (dialer.callbacks) ---
    # The Twilio account (AC...). With DIALER_TWILIO_AUTH_TOKEN it selects Twilio under
    # `auto` telephony; unset, the service dials nobody and says so at start.
    twilio_account_sid: str = ""
    # Signs every webhook (X-Twilio-Signature); a secret: never logged, never echoed.
    twilio_auth_token: SecretStr = SecretStr("")
    # The URL Twilio reaches the service at (scheme, host, optional path prefix): callback
    # URLs are built from it and signatures are checked against it, behind any proxy.
    public_base_url: str = "http://127.0.0.1:8000"
    # A Twilio callback whose body is larger than this is refused with 413 unread.
    webhook_max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # Twilio's webhook connection overrides, appended as a fragment to every callback URL
    # we hand Twilio (ct, rt, tt in ms; rc retries; rp on 4xx, 5xx, ct, rt or all): by
    # default Twilio retries nothing but a failed connect. Empty: none.
    twilio_connection_overrides: str = DEFAULT_CONNECTION_OVERRIDES
    # A callback whose database work has not finished within this many seconds (the
    # database unreachable or not answering; or this service saturated) is answered 503
    # with Retry-After, and Twilio retries it per the overrides, within its 15 s budget.
    webhook_database_timeout_seconds: float = Field(default=5.0, gt=0, le=14)
    # Voice flow: keypad 1 (promise to pay) records a promise due this many days ahead.
    promise_days: int = Field(default=7, ge=1, le=60)
    # Keypad 2 (call me back) asks for a callback this many minutes later.
    callback_after_minutes: int = Field(default=240, ge=1)
    # Whom keypad 3 (talk to the team) reaches: a JSON object team -> E.164 number,
    # e.g. {"early": "+8610..."}; a case's team comes from the strategy's `teams`.
    team_numbers: dict[str, str] = Field(default_factory=dict)
    # Keypad 3's number for a case whose team has none in DIALER_TEAM_NUMBERS (unset:
    # keypad 3 is not offered a number to reach).
    default_team_number: str | None = None
    # The name callers hear and texts sign with (identity level: said to anyone).
    company_display_name: str = "Collections Service"
    # Who is calling, as the greeting names them.
    agent_display_name: str = "the service team"
    # The number people are told to call back (E.164): the third-party and voicemail
    # scripts say it. Empty: calls say DIALER_DEFAULT_TEAM_NUMBER, texts give
    # DIALER_TWILIO_FROM_NUMBER. Set it whenever a strategy lets third parties be called.
    callback_number: str = ""
    # The language of the spoken scripts (cases in CN are always spoken in zh).
    voice_language: str = "en"
    # Attempts left in a non-final state longer than this are looked up at the provider.
    stuck_attempt_timeout_seconds: int = Field(default=1800, ge=60)
    # A call with no status callback for this long is looked up at the provider, and its
    # in-progress place freed once it has ended (a lost final callback). Twilio rings for
    # at most 60 s by default and the voice flow lasts about a minute: well under this.
    silent_call_seconds: int = Field(default=180, ge=1, le=86_400)
    # How often each worker's reconciler looks for attempts to look up.
    reconcile_interval_seconds: float = Field(default=15.0, ge=0.1, le=3600)

    # --- dispatch (dialer.dispatch, `dialer worker`) ---
    # auto: Twilio when an account SID and token are set, else dial nobody: `serve` and
    # `worker` say so at start, each attempt ends `not_sent` (error `no_telephony`) and its
    # campaign's progress warns. simulator: dial nobody and post signed callbacks back to
    # DIALER_PUBLIC_BASE_URL (the demo); it signs with DIALER_TWILIO_AUTH_TOKEN, which must
    # be set, the same, for `dialer serve` and `dialer worker`.
    telephony: Literal["auto", "twilio", "simulator"] = "auto"
    # Seeds the simulator's mix of outcomes (the same seed plays the same morning).
    simulator_seed: int = 7
    # RabbitMQ URL (amqp://...); unset: the in-process queue (one process, nothing survives
    # a restart but the outbox and the attempts).
    queue_url: str | None = None
    # The same as DIALER_QUEUE_URL, under its older name (DIALER_QUEUE_URL wins).
    rabbitmq_url: str | None = None
    # Prefix of every exchange and queue name (one namespace per deployment).
    queue_namespace: str = "dialer"
    # Deliveries of a failing job before it is dead-lettered.
    queue_delivery_limit: int = Field(default=5, ge=1)
    # Jobs carried in one RabbitMQ message at most (the broker's cost is per message; each
    # job still gets its own outcome, retry and dead letter). 1: one job a message.
    queue_bundle_size: int = Field(default=100, ge=1, le=10_000)
    # Messages one worker holds unacked; unset: enough bundles to fill its concurrency, plus
    # one. Raise it to drain a backlog of single-job messages (a rolling upgrade) faster.
    queue_prefetch: int | None = Field(default=None, ge=1, le=10_000)
    # Jobs one worker process handles at a time (the broker's prefetch holds enough
    # bundles to fill it). Jobs that arrive together are reserved in one transaction, so
    # this also bounds a batch.
    worker_concurrency: int = Field(default=64, ge=1, le=1000)
    # Group commit: at most this many jobs reserved in one transaction, this many such
    # transactions at a time per worker; a batch waits this long for more jobs, only while
    # another batch is running (an idle worker reserves a lone job at once).
    worker_batch_size: int = Field(default=64, ge=1, le=1000)
    # Group-commit transactions one worker runs at a time.
    worker_batches: int = Field(default=2, ge=1, le=16)
    # How long (ms) a batch waits for more jobs while another batch is running.
    worker_batch_linger_ms: int = Field(default=10, ge=0, le=1000)
    # The fence (issue 19): a worker may dial a reserved attempt only within this lease
    # from its reservation; once it has run out the reconciler reclaims the attempt (it
    # was certainly never dialled) and plans it again.
    reserve_lease_seconds: float = Field(default=300.0, ge=1.0, le=86_400.0)
    # The Twilio HTTP client's whole timeout for one request. A `dialing` attempt is
    # looked up only after the fence's send window, this timeout and the margin below
    # have passed since its fence (`dialer.dispatch.fence.dialing_reclaim_after`).
    twilio_http_timeout_seconds: float = Field(default=15.0, gt=0.0, le=300.0)
    # Extra seconds past the send window and the HTTP timeout before a `dialing`
    # attempt is looked up (clock skew and a slow process).
    reclaim_margin_seconds: float = Field(default=30.0, ge=1.0, le=3600.0)
    # PostgreSQL connections one worker keeps: at most this many, and no more than its
    # concurrency + 6 (planner, read-ahead, relays, reconciler). A batch holds one, not a
    # job; keep workers x this + API processes x 15 below max_connections.
    worker_db_pool: int = Field(default=20, ge=4, le=500)
    # The caller id of outbound calls (E.164, a number the Twilio account owns); SMS use
    # the messaging service when one is set.
    twilio_from_number: str = "+15005550006"
    # The browser desk's voice: the Twilio API key (SK...) that signs collectors' Voice
    # SDK access tokens (POST /v1/agents/me/token). Unset: no token is issued (503).
    twilio_api_key_sid: str = ""
    # That API key's secret; a secret: never logged, never echoed.
    twilio_api_key_secret: SecretStr = SecretStr("")
    # The TwiML app (AP...) a collector's browser places its outgoing calls through.
    twilio_twiml_app_sid: str = ""
    # How long a collector's Voice SDK access token is valid (Twilio allows 24 hours).
    voice_token_ttl_seconds: int = Field(default=3600, ge=60, le=86_400)
    # The Twilio messaging service (MG...) texts are sent through; unset: from
    # DIALER_TWILIO_FROM_NUMBER.
    twilio_messaging_service_sid: str | None = None
    # E-mail through SMTP when a host is set (else e-mail attempts fail, never silently).
    smtp_host: str | None = None
    # The SMTP server's port (587: STARTTLS).
    smtp_port: int = 587
    # The From of every e-mail.
    smtp_sender: str = "Collections <collections@example.com>"
    # SMTP login (unset: no authentication).
    smtp_username: str | None = None
    # SMTP password; a secret: never logged.
    smtp_password: SecretStr | None = None
    # Words the templates may use at full disclosure.
    creditor_name: str = "the creditor"
    # The link full-disclosure texts and e-mails give for paying.
    payment_link: str = "https://pay.example.com"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
