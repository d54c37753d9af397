//! Server settings (flags > environment > defaults, resolved by clap).

use std::net::SocketAddr;

use clap::{Args, ValueEnum};

pub const DEFAULT_DATABASE_URL: &str = "sqlite://kiln-data/kiln.db";
pub const DEFAULT_BASE_URL: &str = "http://localhost:8080";

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// Database URL: `sqlite://path` (embedded, the default) or `postgres://…`.
    #[arg(long, global = true, env = "KILN_DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,
    /// Connections in the database pool.
    #[arg(
        long,
        global = true,
        env = "KILN_DATABASE_MAX_CONNECTIONS",
        default_value_t = 16
    )]
    pub database_max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on (`127.0.0.1:0` picks a free port, printed at start).
    #[arg(long, env = "KILN_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Public URL of this server, used in every absolute link (no trailing slash).
    #[arg(long, env = "KILN_BASE_URL", default_value = DEFAULT_BASE_URL)]
    pub base_url: String,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "KILN_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Request bodies (of 64 KiB and more) held at once, in bytes; more wait their turn.
    #[arg(long, env = "KILN_MAX_BODY_BYTES_IN_FLIGHT", default_value_t = 64 * 1024 * 1024)]
    pub max_body_bytes_in_flight: u64,
    /// Page size when a client gives no `_count`.
    #[arg(long, env = "KILN_DEFAULT_PAGE_SIZE", default_value_t = 50)]
    pub default_page_size: i64,
    /// Largest page size a client may ask for.
    #[arg(long, env = "KILN_MAX_PAGE_SIZE", default_value_t = 1000)]
    pub max_page_size: i64,
    /// Seconds a request may take before it is answered with 503.
    #[arg(long, env = "KILN_REQUEST_TIMEOUT_SECS", default_value_t = 120)]
    pub request_timeout_secs: u64,
    /// Milliseconds one search statement may run before the database stops it (503);
    /// default: the request timeout.
    #[arg(long, env = "KILN_SEARCH_TIMEOUT_MS")]
    pub search_timeout_ms: Option<u64>,
    /// Import the bundled Synthea sample patients at start when they are not there yet.
    #[arg(long, env = "KILN_LOAD_SAMPLE_DATA", default_value_t = false)]
    pub load_sample_data: bool,
    /// TLS certificate chain (PEM); with `--tls-key`, Kiln serves HTTPS itself (TLS 1.2/1.3).
    #[arg(long, env = "KILN_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM) for `--tls-cert`.
    #[arg(long, env = "KILN_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// SQLite only: the largest the database may grow, in bytes; a write past it is refused
    /// with 507 and stores nothing (default: as large as the disk allows).
    #[arg(long, env = "KILN_SQLITE_MAX_BYTES")]
    pub sqlite_max_bytes: Option<u64>,
    /// Record no audit events (docs/audit.md). The start itself is recorded: "audit
    /// disabled" now, "audit enabled" when a later start has auditing on again.
    #[arg(long, env = "KILN_DISABLE_AUDIT", default_value_t = false)]
    pub disable_audit: bool,
    /// A directory on durable local storage for this server's audit spool: each event of a
    /// read, search or sign-in is written there before the answer (synced every 50 ms), and
    /// loaded into the searchable log in batches (docs/audit.md). Each server needs its own. Default: beside
    /// a SQLite database file (`kiln.db-audit-spool`); on PostgreSQL none, and each event is
    /// committed to the database before its request is answered.
    #[arg(long, env = "KILN_AUDIT_SPOOL_DIR")]
    pub audit_spool_dir: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub export: ExportConfig,
    #[command(flatten)]
    pub mail: MailConfig,
    #[command(flatten)]
    pub onboarding: OnboardingConfig,
    #[command(flatten)]
    pub portal: PortalConfig,
    #[command(flatten)]
    pub replicas: ReplicaConfig,
    #[command(flatten)]
    pub metrics: MetricsConfig,
}

/// Running as one of several replicas behind a load balancer, and reading from a standby.
#[derive(Debug, Clone, Default, Args)]
pub struct ReplicaConfig {
    /// Seconds between a shutdown signal (SIGTERM) and the listener closing. Meanwhile
    /// `/readyz` answers 503, so the load balancer's health check takes this replica out,
    /// and requests are still served. Set it above the balancer's check interval times its
    /// fall count. Default 0: close at once.
    #[arg(long, env = "KILN_SHUTDOWN_DRAIN_SECS", default_value_t = 0)]
    pub shutdown_drain_secs: u64,
    /// PostgreSQL only: a streaming standby of the database (`postgres://…`) that answers
    /// searches, history and export reads. A client that wrote reads from the primary until
    /// the standby has replayed its write (read-your-writes).
    #[arg(long, env = "KILN_DATABASE_READ_URL", hide_env_values = true)]
    pub database_read_url: Option<String>,
}

/// Where `/metrics` (Prometheus text format) is served, and who may read it.
#[derive(Debug, Clone, Default, Args)]
pub struct MetricsConfig {
    /// Serve `/metrics` on its own listener at this address instead of the main one (which
    /// then answers 404 for it).
    #[arg(long, env = "KILN_METRICS_BIND")]
    pub metrics_bind: Option<SocketAddr>,
    /// A secret a scraper must send as `Authorization: Bearer <secret>` (default: none,
    /// `/metrics` is open to whoever reaches the listener).
    #[arg(long, env = "KILN_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,
    /// Record no metrics and serve no `/metrics`.
    #[arg(long, env = "KILN_DISABLE_METRICS", default_value_t = false)]
    pub disable_metrics: bool,
}

impl MetricsConfig {
    /// The settings `KILN_METRICS_*` and `KILN_DISABLE_METRICS` give, with no flags
    /// (`kiln bench` builds its server from them).
    pub fn from_env() -> Result<MetricsConfig, clap::Error> {
        #[derive(clap::Parser)]
        struct Metrics {
            #[command(flatten)]
            metrics: MetricsConfig,
        }
        <Metrics as clap::Parser>::try_parse_from(["kiln"]).map(|parsed| parsed.metrics)
    }
}

/// The developer portal's texts.
#[derive(Debug, Clone, Default, Args)]
pub struct PortalConfig {
    /// The operator's terms of use that developers accept on the app registration form: a
    /// text or Markdown file, shown as written. Default: a short generic text.
    #[arg(long, env = "KILN_OPERATOR_TERMS_FILE")]
    pub operator_terms_file: Option<std::path::PathBuf>,
}

/// Outgoing mail (the developer portal's verification and password-reset links).
#[derive(Debug, Clone, Args)]
pub struct MailConfig {
    /// SMTP server for outgoing mail: `smtp://host:port` (plain, or STARTTLS when offered),
    /// `smtp://host?tls=required`, `smtps://user:pass@host` (TLS). Unset: messages go to the
    /// log (INFO) instead.
    #[arg(long, env = "KILN_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<Secret>,
    /// Sender of Kiln's mail.
    #[arg(long, env = "KILN_MAIL_FROM", default_value = DEFAULT_MAIL_FROM)]
    pub mail_from: String,
}

pub const DEFAULT_MAIL_FROM: &str = "Kiln <no-reply@localhost>";

impl Default for MailConfig {
    /// No SMTP server: mail goes to the log.
    fn default() -> Self {
        MailConfig {
            smtp_url: None,
            mail_from: DEFAULT_MAIL_FROM.to_string(),
        }
    }
}

/// How registered apps are reviewed, and whether this is a sandbox deployment for developers.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct OnboardingConfig {
    /// Which submitted apps are approved without an admin: `review` (none), `patient-read`
    /// (apps asking only for patient read scopes) or `all`. Default: `review`, or `all` in a
    /// sandbox.
    #[arg(long, env = "KILN_APPROVAL_POLICY", value_enum)]
    pub approval_policy: Option<ApprovalPolicy>,
    /// A sandbox deployment for developers: submitted apps are approved (unless
    /// `--approval-policy` says otherwise) and loopback redirect URIs are allowed.
    #[arg(long, env = "KILN_SANDBOX", default_value_t = false)]
    pub sandbox: bool,
    /// Let clients register themselves at `POST /auth/register` (RFC 7591) and manage
    /// their registration (RFC 7592); each registration follows the approval policy. Off by
    /// default.
    #[arg(long, env = "KILN_DYNAMIC_REGISTRATION", default_value_t = false)]
    pub dynamic_registration: bool,
}

/// Which submitted apps are approved without an admin's review.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ApprovalPolicy {
    /// An admin reviews every app.
    #[default]
    Review,
    /// Apps asking only for patient read scopes are approved; the rest wait for review.
    PatientRead,
    /// Every app is approved.
    All,
}

impl ApprovalPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalPolicy::Review => "review",
            ApprovalPolicy::PatientRead => "patient-read",
            ApprovalPolicy::All => "all",
        }
    }

    pub fn parse(text: &str) -> Option<ApprovalPolicy> {
        <ApprovalPolicy as ValueEnum>::from_str(text, false).ok()
    }
}

impl OnboardingConfig {
    /// The policy in force: the one given, else `all` in a sandbox and `review` elsewhere.
    pub fn policy(&self) -> ApprovalPolicy {
        match self.approval_policy {
            Some(policy) => policy,
            None if self.sandbox => ApprovalPolicy::All,
            None => ApprovalPolicy::Review,
        }
    }
}

/// Bulk Data export: where files go, how long they stay, and how the workers pace jobs.
#[derive(Debug, Clone, Args)]
pub struct ExportConfig {
    /// Directory of the export files (one subdirectory per job).
    #[arg(long, env = "KILN_EXPORT_DIR", default_value = "kiln-data/exports")]
    pub export_dir: std::path::PathBuf,
    /// Seconds a finished export's files stay available (default 1 hour).
    #[arg(long, env = "KILN_EXPORT_EXPIRY", default_value_t = 3600)]
    pub export_expiry: i64,
    /// Export jobs one client may have queued or running at once.
    #[arg(long, env = "KILN_EXPORT_MAX_JOBS", default_value_t = 3)]
    pub export_max_jobs: i64,
    /// Seconds a worker holds a job without renewing; after that another worker (or this
    /// one after a restart) takes it over.
    #[arg(long, env = "KILN_EXPORT_LEASE", default_value_t = 60)]
    pub export_lease: i64,
    /// Resources read from the database per batch.
    #[arg(long, env = "KILN_EXPORT_BATCH", default_value_t = 1000)]
    pub export_batch: i64,
    /// Lines (resources) per export file; a larger part is split into several files.
    #[arg(long, env = "KILN_EXPORT_FILE_LINES", default_value_t = 100_000)]
    pub export_file_lines: i64,
    #[command(flatten)]
    pub s3: S3Config,
}

/// An S3-compatible bucket for the export files, shared by every replica; unset: the
/// export directory is used.
#[derive(Debug, Clone, Default, Args)]
pub struct S3Config {
    /// Bucket of the export files; when set, files go there instead of the export directory.
    #[arg(long = "export-s3-bucket", env = "KILN_EXPORT_S3_BUCKET")]
    pub bucket: Option<String>,
    /// Endpoint of an S3-compatible service (MinIO, Ceph…), addressed path-style; `http://`
    /// is accepted here only. Default: AWS.
    #[arg(long = "export-s3-endpoint", env = "KILN_EXPORT_S3_ENDPOINT")]
    pub endpoint: Option<String>,
    /// Region of the bucket.
    #[arg(
        long = "export-s3-region",
        env = "KILN_EXPORT_S3_REGION",
        default_value = "us-east-1"
    )]
    pub region: String,
    /// Key prefix of the export files in the bucket (e.g. `kiln/exports`).
    #[arg(long = "export-s3-prefix", env = "KILN_EXPORT_S3_PREFIX")]
    pub prefix: Option<String>,
    /// Access key id; without it, the usual AWS credential chain applies (AWS_* variables,
    /// web identity, container or instance credentials).
    #[arg(
        long = "export-s3-access-key-id",
        env = "KILN_EXPORT_S3_ACCESS_KEY_ID",
        hide_env_values = true,
        requires = "secret_access_key"
    )]
    pub access_key_id: Option<String>,
    /// Secret access key, with `--export-s3-access-key-id`.
    #[arg(
        long = "export-s3-secret-access-key",
        env = "KILN_EXPORT_S3_SECRET_ACCESS_KEY",
        hide_env_values = true,
        requires = "access_key_id"
    )]
    pub secret_access_key: Option<Secret>,
}

/// A credential that never shows in `Debug` output (and so never in logs).
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Secret(***)")
    }
}

impl ExportConfig {
    /// The `kiln serve` defaults (and any `KILN_EXPORT_*` variables) with files in `dir`:
    /// read through the flags' own definitions, so there is one place for the defaults.
    pub fn in_dir(dir: &std::path::Path) -> Result<ExportConfig, clap::Error> {
        #[derive(clap::Parser)]
        struct Export {
            #[command(flatten)]
            export: ExportConfig,
        }
        let dir = dir.as_os_str().to_owned();
        let args = [std::ffi::OsString::from("kiln"), "--export-dir".into(), dir];
        <Export as clap::Parser>::try_parse_from(args).map(|parsed| parsed.export)
    }
}

/// Token lifetimes and access policy of the SMART authorization server.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// Seconds an app's access token (and id_token) stays valid.
    #[arg(long, env = "KILN_ACCESS_TOKEN_LIFETIME", default_value_t = 3600)]
    pub access_token_lifetime: i64,
    /// Seconds a backend service's access token stays valid (at most 300).
    #[arg(long, env = "KILN_BACKEND_TOKEN_LIFETIME", default_value_t = 300)]
    pub backend_token_lifetime: i64,
    /// Seconds a refresh token stays valid (default 90 days).
    #[arg(long, env = "KILN_REFRESH_TOKEN_LIFETIME", default_value_t = 90 * 24 * 3600)]
    pub refresh_token_lifetime: i64,
    /// Serve FHIR data to requests without a token (off by default; for local exploration).
    #[arg(long, env = "KILN_ANONYMOUS_ACCESS", default_value_t = false)]
    pub anonymous_access: bool,
    /// Let patient tokens with a `patient/AuditEvent.rs` (or `user/`, for a patient user)
    /// scope search the audit log's events about their own record (off by default).
    #[arg(long, env = "KILN_AUDIT_PATIENT_ACCESS", default_value_t = false)]
    pub audit_patient_access: bool,
    /// Seconds a replica keeps a verified access token in memory (never past its expiry;
    /// revocations clear it at once on every replica); 0 checks every request in the database.
    #[arg(long, env = "KILN_TOKEN_CACHE_TTL", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=300))]
    pub token_cache_ttl: u64,
}

impl AuthConfig {
    /// The backend-services lifetime, capped at the five minutes SMART allows.
    pub fn backend_lifetime(&self) -> i64 {
        self.backend_token_lifetime.clamp(1, 300)
    }
}

impl ServeConfig {
    /// The FHIR base URL: `{base-url}/fhir`.
    pub fn fhir_base(&self) -> String {
        format!("{}/fhir", self.base_url.trim_end_matches('/'))
    }
}
