//! Configuration: built-in defaults ← optional TOML file ← `KOOGATE_*` environment variables, with
//! `KOOGATE_<NAME>_FILE` for secrets. Loaded once, validated, then passed around as a value.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use koogate_protocol::webhook::WebhookSecret;
use koogate_protocol::{AccessKey, ResultCode};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Settings given as secrets: each may also come from a file named by `KOOGATE_<NAME>_FILE`.
const SECRET_KEYS: [&str; 6] = ["access_key", "master_key", "database_url", "ak", "sk", "app_webhook_secret"];

/// Text settings whose environment values are taken verbatim. figment would read `0012345` as the
/// number 12345, corrupting a key or turning the code `000005` into 5.
const TEXT_KEYS: [&str; 18] = [
    "app_webhook_url",
    "app_webhook_secret",
    "app_command",
    "delivery_schedule",
    "ak",
    "sk",
    "marketplace_url",
    "marketplace_fallback_url",
    "database_url",
    "access_key",
    "master_key",
    "produce_path",
    "front_end_url",
    "admin_url",
    "admin_user_name",
    "memo",
    "change_check_reject_code",
    "log",
];

/// How `changeInstanceCheck` (renewal with a specification change) is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeCheckPolicy {
    Accept,
    Reject,
}

/// Who sets up a new instance for the buyer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvisionerKind {
    /// At once, from the URL and account templates.
    Template,
    /// The merchant's app, told by the `instance.created` webhook (`newInstance` answers `000004`).
    Webhook,
    /// A local executable, given each event on standard input (`newInstance` answers `000004`).
    Command,
}

/// Which usage-data API pushes records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UsageApi {
    New,
    Old,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting, with its default in [`Config::default`]. Field names are the environment variable
/// names without the `KOOGATE_` prefix, lower-cased.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// `KOOGATE_LISTEN`: address and port to serve on.
    pub listen: SocketAddr,
    /// `KOOGATE_DATABASE_URL`: `sqlite://PATH` (default `sqlite://koogate.db`) or `postgres://…`.
    #[serde(serialize_with = "expose")]
    pub database_url: SecretString,
    /// `KOOGATE_AUTO_MIGRATE`: apply migrations when `serve` starts.
    pub auto_migrate: bool,
    /// `KOOGATE_DB_MAX_CONNECTIONS`: pool size per replica (readers on SQLite).
    pub db_max_connections: u32,
    #[serde(with = "humantime_serde")]
    pub db_acquire_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub db_statement_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub db_busy_timeout: Duration,

    /// `KOOGATE_ACCESS_KEY`: the key bound to the basic interfaces in the Seller Console.
    #[serde(serialize_with = "expose_opt")]
    pub access_key: Option<SecretString>,
    /// `KOOGATE_ACCESS_KEY_BASE64`: the key is given base64-encoded, as the EU console shows it.
    pub access_key_base64: bool,
    /// `KOOGATE_PRODUCE_PATH`: the path of the production interface.
    pub produce_path: String,
    /// How far a callback's timestamp may be from now (spec §2.5: 60 s).
    #[serde(with = "humantime_serde")]
    pub timestamp_window: Duration,
    /// How long a used nonce is remembered; at least twice the timestamp window.
    #[serde(with = "humantime_serde")]
    pub nonce_ttl: Duration,
    /// Largest accepted callback body.
    pub max_body_bytes: usize,
    /// Time after which a callback still being handled is answered `000005` (KooGallery allows 5 s).
    #[serde(with = "humantime_serde")]
    pub callback_timeout: Duration,

    /// `KOOGATE_FRONT_END_URL`: the buyer's URL, `{instance_id}` substituted.
    pub front_end_url: Option<String>,
    /// `KOOGATE_ADMIN_URL`: the admin console URL, `{instance_id}` substituted.
    pub admin_url: Option<String>,
    /// `KOOGATE_ADMIN_USER_NAME`: when set, each instance gets this admin account with a generated
    /// password (`{instance_id}` substituted). Needs `KOOGATE_MASTER_KEY`.
    pub admin_user_name: Option<String>,
    /// `KOOGATE_MEMO`: remarks shown to the buyer.
    pub memo: Option<String>,
    /// `KOOGATE_MASTER_KEY`: 32 bytes, base64, encrypting credentials at rest.
    #[serde(serialize_with = "expose_opt")]
    pub master_key: Option<SecretString>,
    /// `KOOGATE_CREATE_RESPONSE_APP_INFO`: also put `appInfo.frontEndUrl` in the `newInstance` answer
    /// (spec §6.1 recommends it as a hedge; UNCONFIRMED whether the debug tool needs it).
    pub create_response_app_info: bool,

    /// `KOOGATE_CHANGE_CHECK_POLICY`: `accept` (default) or `reject`.
    pub change_check_policy: ChangeCheckPolicy,
    /// The code a rejected change check gets (spec §6.7 UNCONFIRMED: `000005` or `000100`).
    pub change_check_reject_code: String,

    /// How long a released instance's data is kept before the purge worker erases it.
    #[serde(with = "humantime_serde")]
    pub release_retention: Duration,
    /// How often the housekeeping worker runs.
    #[serde(with = "humantime_serde")]
    pub maintenance_interval: Duration,
    /// How long a claimed background job is reserved for its replica; a crashed replica's jobs are
    /// taken over after this.
    #[serde(with = "humantime_serde")]
    pub job_lease: Duration,
    /// How often an idle replica looks for due jobs.
    #[serde(with = "humantime_serde")]
    pub job_poll_interval: Duration,

    /// `KOOGATE_PROVISIONER`: `template` (default), `webhook` or `command`.
    pub provisioner: ProvisionerKind,
    /// `KOOGATE_APP_WEBHOOK_URL`: where lifecycle events are POSTed (Standard Webhooks).
    pub app_webhook_url: Option<String>,
    /// `KOOGATE_APP_WEBHOOK_SECRET`: `whsec_…`; several, separated by spaces, while rotating.
    #[serde(serialize_with = "expose_opt")]
    pub app_webhook_secret: Option<SecretString>,
    #[serde(with = "humantime_serde")]
    pub app_webhook_timeout: Duration,
    /// `KOOGATE_APP_COMMAND`: the executable the `command` provisioner runs for each event.
    pub app_command: Option<String>,
    #[serde(with = "humantime_serde")]
    pub app_command_timeout: Duration,
    /// `KOOGATE_DELIVERY_SCHEDULE`: waits between delivery attempts, comma-separated; after the last the
    /// delivery is dead. The default spans about 74 hours.
    pub delivery_schedule: String,
    /// `KOOGATE_CREATED_EVENT_WAITS_FOR_ORDER`: hold `instance.created` until the order details are
    /// fetched (at most `KOOGATE_ORDER_WAIT_MAX`), so the app learns what was bought.
    pub created_event_waits_for_order: bool,
    #[serde(with = "humantime_serde")]
    pub order_wait_max: Duration,
    /// `KOOGATE_EXPIRY_GRACE`: how long after its expiry an instance that was not frozen still counts
    /// as entitled (KooGallery's FREEZE may arrive late).
    #[serde(with = "humantime_serde")]
    pub expiry_grace: Duration,

    /// `KOOGATE_USAGE_WINDOW`: the metering window (KooGallery bills hourly; shorter only for testing).
    #[serde(with = "humantime_serde")]
    pub usage_window: Duration,
    /// `KOOGATE_USAGE_API`: `new` (signed with the access key; default) or `old` (AK/SK, for products
    /// onboarded with the old usage API).
    pub usage_api: UsageApi,

    /// `KOOGATE_MARKETPLACE_URL`: base URL of KooGallery's Open APIs (China site by default).
    pub marketplace_url: String,
    /// `KOOGATE_MARKETPLACE_FALLBACK_URL`: tried when the primary host cannot be reached; empty for none.
    pub marketplace_fallback_url: String,
    /// `KOOGATE_AK`: access key id for the Open APIs (Seller Center → My Credentials → Access Keys).
    #[serde(serialize_with = "expose_opt")]
    pub ak: Option<SecretString>,
    /// `KOOGATE_SK`: the secret of `KOOGATE_AK`.
    #[serde(serialize_with = "expose_opt")]
    pub sk: Option<SecretString>,
    /// Whole-request timeout of an Open API call.
    #[serde(with = "humantime_serde")]
    pub marketplace_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub marketplace_connect_timeout: Duration,

    /// `KOOGATE_LOG`: a tracing filter such as `info` or `koogate_server=debug`.
    pub log: String,
    pub log_format: LogFormat,
    /// Serve Prometheus metrics at `/metrics`.
    pub metrics: bool,
}

fn expose<S: serde::Serializer>(value: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(value.expose_secret())
}

fn expose_opt<S: serde::Serializer>(value: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(v) => s.serialize_some(v.expose_secret()),
        None => s.serialize_none(),
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            database_url: SecretString::from("sqlite://koogate.db"),
            auto_migrate: true,
            db_max_connections: 8,
            db_acquire_timeout: Duration::from_secs(3),
            db_statement_timeout: Duration::from_secs(5),
            db_busy_timeout: Duration::from_secs(5),
            access_key: None,
            access_key_base64: false,
            produce_path: "/saasproduce".into(),
            timestamp_window: Duration::from_secs(60),
            nonce_ttl: Duration::from_secs(600),
            max_body_bytes: 64 * 1024,
            callback_timeout: Duration::from_secs(4),
            front_end_url: None,
            admin_url: None,
            admin_user_name: None,
            memo: None,
            master_key: None,
            create_response_app_info: true,
            change_check_policy: ChangeCheckPolicy::Accept,
            change_check_reject_code: "000005".into(),
            release_retention: Duration::from_secs(30 * 24 * 3600),
            maintenance_interval: Duration::from_secs(60),
            job_lease: Duration::from_secs(300),
            job_poll_interval: Duration::from_secs(1),
            provisioner: ProvisionerKind::Template,
            app_webhook_url: None,
            app_webhook_secret: None,
            app_webhook_timeout: Duration::from_secs(10),
            app_command: None,
            app_command_timeout: Duration::from_secs(30),
            delivery_schedule: DEFAULT_DELIVERY_SCHEDULE.into(),
            created_event_waits_for_order: true,
            order_wait_max: Duration::from_secs(600),
            expiry_grace: Duration::from_secs(86_400),
            usage_window: Duration::from_secs(3600),
            usage_api: UsageApi::New,
            marketplace_url: "https://mkt.myhuaweicloud.com".into(),
            marketplace_fallback_url: "https://mkt.myhuaweicloud.cn".into(),
            ak: None,
            sk: None,
            marketplace_timeout: Duration::from_secs(10),
            marketplace_connect_timeout: Duration::from_secs(3),
            log: "info".into(),
            log_format: LogFormat::Text,
            metrics: true,
        }
    }
}

/// A configuration problem, worded to say how to fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Invalid(String),
    #[error("configuration: {0}")]
    Figment(#[from] Box<figment::Error>),
    #[error("configuration: cannot read {path}: {source}")]
    ReadFile { path: PathBuf, source: std::io::Error },
}

impl Config {
    /// Loads defaults, then the TOML file (if any), then the `KOOGATE_*` environment variables, then the
    /// `KOOGATE_<NAME>_FILE` secret files.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::Invalid(format!(
                    "the config file {} does not exist",
                    path.display()
                )));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        // KOOGATE_CONFIG names the file and the *_FILE variables are read below; neither is a setting.
        // KOOGATE_TEST_* is reserved for the test suites (backend selection).
        let env = Env::prefixed("KOOGATE_").filter(|key| {
            let key = key.as_str().to_ascii_lowercase();
            key != "config"
                && !key.ends_with("_file")
                && !key.starts_with("test_")
                && !TEXT_KEYS.contains(&key.as_str())
        });
        figment = figment.merge(env);
        for name in TEXT_KEYS {
            if let Ok(value) = std::env::var(format!("KOOGATE_{}", name.to_uppercase())) {
                figment = figment.merge(Serialized::global(name, value));
            }
        }
        for (name, value) in read_secret_files()? {
            figment = figment.merge(Serialized::global(name, value));
        }
        let config: Config = figment.extract().map_err(Box::new)?;
        config.check()?;
        Ok(config)
    }

    /// Checks that hold for every command.
    fn check(&self) -> Result<(), ConfigError> {
        koogate_store::DatabaseUrl::parse(self.database_url.expose_secret())
            .map_err(|e| ConfigError::Invalid(format!("KOOGATE_DATABASE_URL: {e}")))?;
        if !self.produce_path.starts_with('/') {
            return Err(invalid("KOOGATE_PRODUCE_PATH must start with '/', for example /saasproduce"));
        }
        if self.nonce_ttl < self.timestamp_window * 2 {
            return Err(invalid(
                "KOOGATE_NONCE_TTL must be at least twice KOOGATE_TIMESTAMP_WINDOW, or a replay could slip \
                 through after the nonce is forgotten",
            ));
        }
        if ResultCode::parse(&self.change_check_reject_code).is_none_or(ResultCode::is_success) {
            return Err(invalid(
                "KOOGATE_CHANGE_CHECK_REJECT_CODE must be a KooGallery failure code such as 000005 or 000100",
            ));
        }
        if let Some(url) = &self.front_end_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid("KOOGATE_FRONT_END_URL must be an http(s) URL, e.g. https://app.example.com/t/{instance_id}"));
            }
        }
        for (name, url) in [
            ("KOOGATE_MARKETPLACE_URL", self.marketplace_url.as_str()),
            ("KOOGATE_MARKETPLACE_FALLBACK_URL", self.marketplace_fallback_url.as_str()),
        ] {
            let empty_fallback = name.ends_with("FALLBACK_URL") && url.is_empty();
            if !(empty_fallback || url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid(format!(
                    "{name} must be an http(s) base URL such as https://mkt.myhuaweicloud.com"
                )));
            }
        }
        self.delivery_schedule()?;
        if self.usage_window < Duration::from_secs(1) || self.usage_window > Duration::from_secs(86_400) {
            return Err(invalid(
                "KOOGATE_USAGE_WINDOW must be between 1s and 1d (KooGallery bills hourly: 1h)",
            ));
        }
        if self.usage_api == UsageApi::Old && self.ak.is_none() {
            return Err(invalid("KOOGATE_USAGE_API=old signs with AK/SK: set KOOGATE_AK and KOOGATE_SK"));
        }
        if let Some(url) = &self.app_webhook_url {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(invalid("KOOGATE_APP_WEBHOOK_URL must be an http(s) URL"));
            }
            let secret = self.app_webhook_secret.as_ref().ok_or_else(|| {
                invalid(
                    "KOOGATE_APP_WEBHOOK_URL needs KOOGATE_APP_WEBHOOK_SECRET (whsec_ followed by base64)",
                )
            })?;
            WebhookSecret::parse_list(secret.expose_secret())
                .map_err(|e| invalid(format!("KOOGATE_APP_WEBHOOK_SECRET: {e}")))?;
        }
        match self.provisioner {
            ProvisionerKind::Webhook if self.app_webhook_url.is_none() => {
                return Err(invalid("KOOGATE_PROVISIONER=webhook needs KOOGATE_APP_WEBHOOK_URL and KOOGATE_APP_WEBHOOK_SECRET"));
            }
            ProvisionerKind::Command if self.app_command.is_none() => {
                return Err(invalid(
                    "KOOGATE_PROVISIONER=command needs KOOGATE_APP_COMMAND (the executable to run)",
                ));
            }
            _ => {}
        }
        if self.ak.is_some() != self.sk.is_some() {
            return Err(invalid("set both KOOGATE_AK and KOOGATE_SK (the Open API key pair), or neither"));
        }
        if self.admin_user_name.is_some() && self.master_key.is_none() {
            return Err(invalid(
                "KOOGATE_ADMIN_USER_NAME asks for generated admin passwords, which are stored encrypted: \
                 set KOOGATE_MASTER_KEY (32 random bytes as base64; `koogate keys generate` prints one)",
            ));
        }
        Ok(())
    }

    /// The access key, or an error that says what to set. `serve` and `sign` need it.
    pub fn access_key(&self) -> Result<AccessKey, ConfigError> {
        let text = self.access_key.as_ref().map(|k| k.expose_secret().to_owned()).unwrap_or_default();
        if text.trim().is_empty() {
            return Err(invalid(
                "KOOGATE_ACCESS_KEY is not set: set it (or KOOGATE_ACCESS_KEY_FILE) to the access key bound \
                 to the basic interfaces in the Seller Console (Application Tools → Key Management); add \
                 KOOGATE_ACCESS_KEY_BASE64=true if the console shows it base64-encoded",
            ));
        }
        if self.access_key_base64 {
            AccessKey::from_base64(&text).map_err(|e| invalid(format!("KOOGATE_ACCESS_KEY: {e}")))
        } else {
            Ok(AccessKey::from_text(&text))
        }
    }

    /// Checks that only `serve` needs.
    pub fn check_serve(&self) -> Result<(), ConfigError> {
        self.access_key()?;
        if self.front_end_url.is_none() {
            return Err(invalid(
                "KOOGATE_FRONT_END_URL is not set: set it to the URL buyers open, with {instance_id} where \
                 the instance id goes, e.g. https://app.example.com/t/{instance_id}",
            ));
        }
        Ok(())
    }

    /// The waits between delivery attempts.
    pub fn delivery_schedule(&self) -> Result<Vec<Duration>, ConfigError> {
        let delays: Vec<Duration> = self
            .delivery_schedule
            .split(',')
            .map(|d| humantime::parse_duration(d.trim()))
            .collect::<Result<_, _>>()
            .map_err(|e| {
                invalid(format!("KOOGATE_DELIVERY_SCHEDULE must list durations like 5s,1m,2h: {e}"))
            })?;
        if delays.is_empty() {
            return Err(invalid("KOOGATE_DELIVERY_SCHEDULE needs at least one delay"));
        }
        Ok(delays)
    }

    /// The webhook signing secrets, when webhooks are configured.
    pub fn webhook_secrets(&self) -> Option<Vec<WebhookSecret>> {
        WebhookSecret::parse_list(self.app_webhook_secret.as_ref()?.expose_secret()).ok()
    }

    /// The Open API key pair, when configured.
    pub fn open_api_credentials(&self) -> Option<koogate_protocol::apig::Credentials> {
        let (ak, sk) = (self.ak.as_ref()?, self.sk.as_ref()?);
        Some(koogate_protocol::apig::Credentials::new(ak.expose_secret().trim(), sk.expose_secret().trim()))
    }

    /// Open API base URLs in the order to try them.
    pub fn marketplace_hosts(&self) -> Vec<String> {
        let mut hosts = vec![self.marketplace_url.trim_end_matches('/').to_owned()];
        let fallback = self.marketplace_fallback_url.trim_end_matches('/');
        if !fallback.is_empty() && fallback != hosts[0] {
            hosts.push(fallback.to_owned());
        }
        hosts
    }

    pub fn database_url(&self) -> koogate_store::DatabaseUrl {
        koogate_store::DatabaseUrl::parse(self.database_url.expose_secret())
            .expect("checked when the configuration was loaded")
    }

    pub fn pool_settings(&self) -> koogate_store::PoolSettings {
        koogate_store::PoolSettings {
            max_connections: self.db_max_connections,
            acquire_timeout: self.db_acquire_timeout,
            busy_timeout: self.db_busy_timeout,
            statement_timeout: self.db_statement_timeout,
        }
    }
}

/// Retries spanning about 74 hours: quick ones first for blips, then hours apart for outages.
pub const DEFAULT_DELIVERY_SCHEDULE: &str = "5s,1m,5m,30m,2h,5h,10h,10h,10h,10h,12h,14h";

fn invalid(message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid(message.into())
}

/// Reads `KOOGATE_<NAME>_FILE` for each secret setting. Naming both the variable and the file is
/// refused, since it is unclear which one the operator meant.
fn read_secret_files() -> Result<Vec<(&'static str, String)>, ConfigError> {
    let mut found = Vec::new();
    for name in SECRET_KEYS {
        let upper = name.to_uppercase();
        let Ok(path) = std::env::var(format!("KOOGATE_{upper}_FILE")) else {
            continue;
        };
        if std::env::var_os(format!("KOOGATE_{upper}")).is_some() {
            return Err(invalid(format!("set either KOOGATE_{upper} or KOOGATE_{upper}_FILE, not both")));
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|source| ConfigError::ReadFile { path: PathBuf::from(&path), source })?;
        found.push((name, text.trim_end_matches(['\r', '\n']).to_owned()));
    }
    Ok(found)
}

// figment's Jail closures must return its (large) error type; that is its API, not a choice here.
#[allow(clippy::result_large_err)]
#[cfg(test)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("k.toml", "listen = \"0.0.0.0:9000\"\nproduce_path = \"/file\"")?;
            jail.set_env("KOOGATE_PRODUCE_PATH", "/env");
            jail.set_env("KOOGATE_RELEASE_RETENTION", "2d");
            let config = Config::load(Some(Path::new("k.toml"))).unwrap();
            assert_eq!(config.listen.port(), 9000);
            assert_eq!(config.produce_path, "/env");
            assert_eq!(config.release_retention, Duration::from_secs(2 * 86400));
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("KOOGATE_LISTN", "0.0.0.0:1");
            assert!(Config::load(None).is_err());
            Ok(())
        });
    }

    #[test]
    fn numeric_looking_secrets_stay_text_and_files_are_read() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.create_file("key", "123456\n")?;
            jail.set_env("KOOGATE_ACCESS_KEY_FILE", "key");
            let config = Config::load(None).unwrap();
            assert_eq!(config.access_key().unwrap().as_bytes(), b"123456");
            jail.set_env("KOOGATE_ACCESS_KEY", "x");
            assert!(Config::load(None).is_err());
            jail.clear_env();
            jail.set_env("KOOGATE_ACCESS_KEY", "0012345");
            let config = Config::load(None).unwrap();
            assert_eq!(config.access_key().unwrap().as_bytes(), b"0012345");
            Ok(())
        });
    }

    #[test]
    fn serve_without_an_access_key_says_what_to_set() {
        let err = Config::default().check_serve().unwrap_err().to_string();
        assert!(err.contains("KOOGATE_ACCESS_KEY"), "{err}");
    }

    #[test]
    fn a_database_url_typo_is_refused() {
        Jail::expect_with(|jail| {
            jail.clear_env();
            jail.set_env("KOOGATE_DATABASE_URL", "postgress://localhost/k");
            assert!(Config::load(None).unwrap_err().to_string().contains("KOOGATE_DATABASE_URL"));
            Ok(())
        });
    }

    #[test]
    fn debug_output_hides_secrets() {
        let config = Config { access_key: Some(SecretString::from("topsecret")), ..Config::default() };
        assert!(!format!("{config:?}").contains("topsecret"));
    }
}
