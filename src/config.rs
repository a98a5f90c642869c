//! Settings, layered with the `config` crate:
//! compiled-in `config/default.toml` < `--config FILE` / `SIGNET_CONFIG`
//! < `DATABASE_URL` < `SIGNET__SECTION__KEY` environment variables.
//! Every struct denies unknown fields so a typo stops start-up, naming the key.

use std::net::SocketAddr;
use std::path::Path;

use config::{Config, Environment, File, FileFormat};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub tokens: TokenSettings,
    pub passwords: PasswordSettings,
    pub registration: RegistrationSettings,
    pub cors: CorsSettings,
    pub keys: KeySettings,
    pub throttle: ThrottleSettings,
    pub cookies: CookieSettings,
    pub demo: DemoSettings,
    pub compat: CompatSettings,
    pub revocation: RevocationSettings,
    pub metrics: MetricsSettings,
    pub maintenance: MaintenanceSettings,
    pub audit: AuditSettings,
    pub log: LogSettings,
}

/// Token status lists (draft-ietf-oauth-status-list): see README "Revocation".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevocationSettings {
    pub enabled: bool,
    pub list_ttl_secs: i64,
    pub list_lifetime_secs: i64,
    pub list_size: i64,
    pub poll_millis: u64,
    pub max_subscribers: usize,
    pub subscriber_buffer: usize,
    pub heartbeat_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    pub enabled: bool,
    /// Empty: `/metrics` on the main address.
    pub bind: String,
}

impl MetricsSettings {
    /// The separate `/metrics` address, if one is configured.
    pub fn bind_addr(&self) -> Option<SocketAddr> {
        self.bind.trim().parse().ok()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSettings {
    pub interval_secs: u64,
}

/// The audit trail (API.md "Operations").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Days an event is kept before the maintenance purge deletes it.
    pub retention_days: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompatSettings {
    pub drf: bool,
    pub simplejwt: bool,
    /// Lifetime of the API tokens `POST /api-token-auth/` creates (DRF's never expire).
    pub drf_token_days: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum CookieSameSite {
    Strict,
    Lax,
    None,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieSettings {
    pub same_site: CookieSameSite,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSettings {
    pub enabled: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThrottleSettings {
    pub enabled: bool,
    pub failures_before_lockout: i32,
    pub lockout_secs: i64,
    pub max_lockout_secs: i64,
    pub failure_window_secs: i64,
    pub per_ip_per_minute: u32,
    pub per_ip_burst: u32,
    /// Exchanges of one API token per minute (per instance).
    pub token_exchanges_per_minute: u32,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// IPv6 clients share a per-IP budget per prefix of this many bits.
    pub ipv6_prefix_len: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub workers: usize,
    pub body_limit_bytes: usize,
    pub max_header_bytes: usize,
    pub request_timeout_secs: u64,
    pub keep_alive_secs: u64,
    pub shutdown_timeout_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May hold a password: `SecretString` never prints it.
    pub url: SecretString,
    pub pool_size: u32,
    pub connect_timeout_secs: u64,
    /// PostgreSQL: threads (each with its own connection, besides the pool)
    /// that run every refresh waiting in one statement; 0 sends refreshes
    /// through the pool.
    pub refresh_batch_threads: usize,
    /// The same for the session read of every bearer check.
    pub session_read_batch_threads: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SigningAlgorithm {
    ES256,
    EdDSA,
    RS256,
    /// Only with an explicit `keys.hmac_secret` of at least 256 bits.
    HS256,
}

impl SigningAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            SigningAlgorithm::ES256 => "ES256",
            SigningAlgorithm::EdDSA => "EdDSA",
            SigningAlgorithm::RS256 => "RS256",
            SigningAlgorithm::HS256 => "HS256",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// base64 of 32 bytes; empty: read (or create) `master_key_file`.
    pub master_key: SecretString,
    pub master_key_file: String,
    pub rotation_days: i64,
    /// 0: JWKS max-age + leeway + reload interval.
    pub prepublish_secs: i64,
    pub reload_secs: u64,
    pub rsa_bits: usize,
    /// base64 of at least 32 bytes, for HS256 only.
    pub hmac_secret: SecretString,
    /// Keep accepting HS256 tokens while another algorithm signs (a migration).
    pub accept_hmac_tokens: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub issuer: String,
    pub audience: String,
    pub client_id: String,
    pub algorithm: SigningAlgorithm,
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
    pub session_max_secs: i64,
    pub refresh_reuse_grace_secs: i64,
    pub leeway_secs: u64,
    pub jwks_max_age_secs: u64,
    pub verify_cache_size: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordSettings {
    pub bcrypt_cost: u32,
    /// Threads that hash passwords (0: one per core; never more than the cores).
    pub hash_threads: usize,
    /// Password checks that may wait for a hashing thread before 503.
    pub hash_queue: usize,
    pub min_length: usize,
    pub min_strength: u8,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationSettings {
    pub open: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSettings {
    pub allowed_origins: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("configuration")]
    Load(#[from] config::ConfigError),
    #[error("configuration: `{key}` {problem}")]
    Invalid { key: &'static str, problem: String },
}

impl Settings {
    /// The production layering: defaults, the file (if any), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        let env_file = std::env::var_os("SIGNET_CONFIG");
        let file = file.or(env_file.as_deref().map(Path::new));
        let mut builder = Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(File::from(file).format(FileFormat::Toml).required(true));
        }
        // DATABASE_URL beats the file; SIGNET__DATABASE__URL beats DATABASE_URL.
        if let Ok(url) = std::env::var("DATABASE_URL") {
            if std::env::var_os("SIGNET__DATABASE__URL").is_none() {
                builder = builder.set_override("database.url", url)?;
            }
        }
        builder = builder.add_source(
            Environment::with_prefix("SIGNET")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .list_separator(",")
                .with_list_parse_key("cors.allowed_origins"),
        );
        Self::finish(builder.build()?)
    }

    /// Defaults with a TOML overlay and no environment: for tests and tools.
    pub fn from_toml(overlay: &str) -> Result<Settings, SettingsError> {
        let config = Config::builder()
            .add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml))
            .add_source(File::from_str(overlay, FileFormat::Toml))
            .build()?;
        Self::finish(config)
    }

    fn finish(config: Config) -> Result<Settings, SettingsError> {
        let mut settings: Settings = config.try_deserialize()?;
        // "a, b" and a trailing comma in SIGNET__CORS__ALLOWED_ORIGINS are fine.
        settings.cors.allowed_origins =
            settings.cors.allowed_origins.iter().map(|o| o.trim().to_owned()).filter(|o| !o.is_empty()).collect();
        settings.validate()?;
        Ok(settings)
    }

    /// The rules serde cannot express; `load` and `from_toml` run it, and so
    /// must anyone who changes a `Settings` by hand (the tests do).
    pub fn validate(&self) -> Result<(), SettingsError> {
        let invalid = |key, problem: &str| Err(SettingsError::Invalid { key, problem: problem.to_owned() });
        if self.server.body_limit_bytes < 256 {
            return invalid("server.body_limit_bytes", "must be at least 256");
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be at least 1");
        }
        if self.database.refresh_batch_threads > 64 {
            return invalid("database.refresh_batch_threads", "must be at most 64");
        }
        if self.database.session_read_batch_threads > 64 {
            return invalid("database.session_read_batch_threads", "must be at most 64");
        }
        if self.database.connect_timeout_secs == 0 {
            return invalid("database.connect_timeout_secs", "must be at least 1");
        }
        if self.database.url.expose_secret().trim().is_empty() {
            return invalid("database.url", "must not be empty");
        }
        let issuer = self.tokens.issuer.as_str();
        if !(issuer.starts_with("https://") || issuer.starts_with("http://")) || issuer.ends_with('/') {
            return invalid("tokens.issuer", "must be an http(s) URL without a trailing slash");
        }
        if self.tokens.audience.is_empty() {
            return invalid("tokens.audience", "must not be empty");
        }
        if self.tokens.client_id.is_empty() {
            return invalid("tokens.client_id", "must not be empty");
        }
        if !(1..=3650).contains(&self.compat.drf_token_days) {
            return invalid("compat.drf_token_days", "must be between 1 and 3650");
        }
        let revocation = &self.revocation;
        if revocation.list_ttl_secs <= 0 {
            return invalid("revocation.list_ttl_secs", "must be positive");
        }
        if revocation.list_lifetime_secs < 4 * revocation.list_ttl_secs {
            return invalid("revocation.list_lifetime_secs", "must be at least 4 times revocation.list_ttl_secs");
        }
        // Whole bytes, and small enough that one list stays one quick query.
        if revocation.list_size < 8 || revocation.list_size % 8 != 0 || revocation.list_size > 16_777_216 {
            return invalid("revocation.list_size", "must be a multiple of 8 between 8 and 16777216");
        }
        if !(10..=60_000).contains(&revocation.poll_millis) {
            return invalid("revocation.poll_millis", "must be between 10 and 60000");
        }
        if revocation.subscriber_buffer == 0 {
            return invalid("revocation.subscriber_buffer", "must be at least 1");
        }
        if !(1..=15).contains(&revocation.heartbeat_secs) {
            return invalid("revocation.heartbeat_secs", "must be between 1 and 15");
        }
        if self.tokens.access_ttl_secs <= 0 {
            return invalid("tokens.access_ttl_secs", "must be positive");
        }
        if self.tokens.refresh_ttl_secs <= 0 {
            return invalid("tokens.refresh_ttl_secs", "must be positive");
        }
        if self.tokens.session_max_secs <= 0 {
            return invalid("tokens.session_max_secs", "must be positive");
        }
        if !(0..=60).contains(&self.tokens.refresh_reuse_grace_secs) {
            return invalid("tokens.refresh_reuse_grace_secs", "must be between 0 and 60");
        }
        if !(4..=31).contains(&self.passwords.bcrypt_cost) {
            return invalid("passwords.bcrypt_cost", "must be between 4 and 31");
        }
        if self.passwords.min_length == 0 || self.passwords.min_length > 1024 {
            return invalid("passwords.min_length", "must be between 1 and 1024");
        }
        if self.passwords.min_strength > 4 {
            return invalid("passwords.min_strength", "must be between 0 and 4");
        }
        if self.server.max_header_bytes < 1024 {
            return invalid("server.max_header_bytes", "must be at least 1024");
        }
        if self.server.request_timeout_secs == 0 {
            return invalid("server.request_timeout_secs", "must be at least 1");
        }
        if !self.metrics.bind.trim().is_empty() && self.metrics.bind_addr().is_none() {
            return invalid("metrics.bind", "must be empty or an address such as 127.0.0.1:9100");
        }
        if self.maintenance.interval_secs == 0 {
            return invalid("maintenance.interval_secs", "must be at least 1");
        }
        if !(1..=36500).contains(&self.audit.retention_days) {
            return invalid("audit.retention_days", "must be between 1 and 36500");
        }
        let t = &self.throttle;
        if t.failures_before_lockout < 1 {
            return invalid("throttle.failures_before_lockout", "must be at least 1");
        }
        if t.lockout_secs < 1 {
            return invalid("throttle.lockout_secs", "must be at least 1");
        }
        if t.max_lockout_secs < t.lockout_secs {
            return invalid("throttle.max_lockout_secs", "must be at least throttle.lockout_secs");
        }
        if t.failure_window_secs < 1 {
            return invalid("throttle.failure_window_secs", "must be at least 1");
        }
        if t.per_ip_per_minute == 0 || t.per_ip_burst == 0 {
            return invalid("throttle.per_ip_per_minute", "and throttle.per_ip_burst must be at least 1");
        }
        if t.token_exchanges_per_minute == 0 {
            return invalid("throttle.token_exchanges_per_minute", "must be at least 1");
        }
        if !(16..=128).contains(&t.ipv6_prefix_len) {
            return invalid("throttle.ipv6_prefix_len", "must be between 16 and 128");
        }
        if self.keys.rotation_days <= 0 {
            return invalid("keys.rotation_days", "must be positive");
        }
        if self.keys.prepublish_secs < 0 {
            return invalid("keys.prepublish_secs", "must not be negative");
        }
        if self.keys.reload_secs == 0 {
            return invalid("keys.reload_secs", "must be at least 1");
        }
        if self.keys.prepublish_secs != 0 && self.keys.prepublish_secs <= self.keys.reload_secs as i64 {
            return invalid(
                "keys.prepublish_secs",
                "must be longer than keys.reload_secs so every instance sees a key before it signs",
            );
        }
        if ![2048, 3072].contains(&self.keys.rsa_bits) {
            return invalid("keys.rsa_bits", "must be 2048 or 3072");
        }
        if self.tokens.algorithm == SigningAlgorithm::HS256 && self.keys.hmac_secret.expose_secret().is_empty() {
            return invalid("tokens.algorithm", "HS256 needs keys.hmac_secret (base64 of at least 32 bytes)");
        }
        if self.cors.allowed_origins.iter().any(|o| o == "*") {
            return invalid("cors.allowed_origins", "must list origins; `*` is not allowed with credentials");
        }
        if let Some(bad) = self.cors.allowed_origins.iter().find(|o| !is_origin(o)) {
            return Err(SettingsError::Invalid {
                key: "cors.allowed_origins",
                problem: format!("{bad:?} is not an origin (scheme://host[:port], no path)"),
            });
        }
        Ok(())
    }

    /// How long a new key is published before it signs: long enough for every
    /// instance to load it and every verifier's cached JWKS to expire.
    pub fn prepublish_secs(&self) -> i64 {
        if self.keys.prepublish_secs > 0 {
            self.keys.prepublish_secs
        } else {
            (self.tokens.jwks_max_age_secs + self.tokens.leeway_secs + self.keys.reload_secs) as i64
        }
    }

    pub fn workers(&self) -> usize {
        if self.server.workers == 0 {
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
        } else {
            self.server.workers
        }
    }
}

/// `http(s)://host[:port]` and nothing more, as a browser writes `Origin`.
fn is_origin(origin: &str) -> bool {
    let Some(rest) = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://")) else {
        return false;
    };
    !rest.is_empty()
        && rest.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        && !rest.starts_with(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole message, as `main` prints it.
    fn error_text(toml: &str) -> String {
        let err = Settings::from_toml(toml).expect_err("must fail");
        format!("{:#}", anyhow::Error::from(err))
    }

    #[test]
    fn defaults_load() {
        let settings = Settings::from_toml("").expect("defaults are valid");
        assert_eq!(settings.tokens.access_ttl_secs, 900);
        assert_eq!(settings.passwords.bcrypt_cost, 12);
    }

    #[test]
    fn unknown_key_names_the_key() {
        let err = error_text("[server]\nbindd = \"x\"");
        assert!(err.contains("bindd"), "{err}");
    }

    #[test]
    fn bad_value_names_the_key() {
        let err = error_text("[passwords]\nbcrypt_cost = 99");
        assert!(err.contains("passwords.bcrypt_cost"), "{err}");
        let err = error_text("[server]\nbind = \"nope\"");
        assert!(err.contains("bind"), "{err}");
    }

    #[test]
    fn cors_origins_are_trimmed_and_checked() {
        let settings = Settings::from_toml("[cors]\nallowed_origins = [\" http://a:1\", \"\", \"https://b.example\"]")
            .expect("valid");
        assert_eq!(settings.cors.allowed_origins, ["http://a:1", "https://b.example"]);
        for bad in ["http://a/", "a.example", "https://a.example/path", "http://"] {
            let err = error_text(&format!("[cors]\nallowed_origins = [\"{bad}\"]"));
            assert!(err.contains("cors.allowed_origins"), "{bad}: {err}");
        }
    }

    #[test]
    fn operations_keys_are_checked() {
        let settings = Settings::from_toml("").expect("defaults");
        assert_eq!(settings.metrics.bind_addr(), None);
        assert_eq!(settings.maintenance.interval_secs, 300);
        assert_eq!(settings.audit.retention_days, 90);
        assert_eq!(settings.server.shutdown_timeout_secs, 30);
        assert_eq!(settings.log.format, LogFormat::Text);
        let settings =
            Settings::from_toml("[metrics]\nbind = \"127.0.0.1:9100\"\n[log]\nformat = \"json\"").expect("valid");
        assert_eq!(settings.metrics.bind_addr(), Some("127.0.0.1:9100".parse().expect("addr")));
        assert_eq!(settings.log.format, LogFormat::Json);
        assert!(error_text("[metrics]\nbind = \"nine\"").contains("metrics.bind"));
        assert!(error_text("[maintenance]\ninterval_secs = 0").contains("maintenance.interval_secs"));
        assert!(error_text("[audit]\nretention_days = 0").contains("audit.retention_days"));
        assert!(error_text("[audit]\nretention_days = 36501").contains("audit.retention_days"));
        assert!(error_text("[log]\nformat = \"xml\"").contains("format"));
    }

    #[test]
    fn database_url_is_not_printed() {
        let settings = Settings::from_toml("[database]\nurl = \"postgres://u:hunter2@h/db\"").expect("valid");
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
