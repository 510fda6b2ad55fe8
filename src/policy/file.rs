//! The policy file as written: a serde mirror of DESIGN.md §2 (the v1 contract).
//!
//! These structs are the one list of the keys a policy file may hold: `schema.rs` takes the
//! key names from them, reports every other key of the file (a misspelt key is an error,
//! never a silently disabled control) and judges each value's JSON type through them, all at
//! once, before the document is deserialized. Every struct still denies unknown fields, as a
//! backstop. Every struct must be a JSON object ([`Object`] refuses the arrays serde would
//! otherwise accept as positional structs). Values whose meaning needs checking (enums,
//! addresses, sizes, durations) are kept as written (`String`, [`Scalar`]) and judged by
//! the loader (`load/`), so that all of their errors are reported together with exact
//! positions.
//!
//! A struct that holds other structs, lists or maps must have them described in the tables
//! of `schema.rs` (a test there checks that they agree).
//!
//! Nothing here has defaults or meaning: that is `load/` and `mod.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// A struct that must be written as a JSON object.
#[derive(Debug)]
pub(crate) struct Object<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = Object<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Object<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Object)
            }
        }

        deserializer.deserialize_map(ObjectVisitor(PhantomData))
    }
}

/// A number or a string, kept as written: sizes, rates, durations, counts and `workers`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Scalar {
    Unsigned(u64),
    Negative(i64),
    Float(f64),
    Text(String),
}

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = Scalar;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a string")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar::Unsigned(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(u64::try_from(v).map_or(Scalar::Negative(v), Scalar::Unsigned))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar::Text(v.to_owned()))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

/// A boolean or a string, kept as written: a user's `tls_session_reuse` (true, false or
/// "bridge").
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum BoolOrWord {
    Bool(bool),
    Word(String),
}

impl<'de> Deserialize<'de> for BoolOrWord {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoolOrWordVisitor;

        impl Visitor<'_> for BoolOrWordVisitor {
            type Value = BoolOrWord;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("true, false or \"bridge\"")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<BoolOrWord, E> {
                Ok(BoolOrWord::Bool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<BoolOrWord, E> {
                Ok(BoolOrWord::Word(v.to_owned()))
            }
        }

        deserializer.deserialize_any(BoolOrWordVisitor)
    }
}

/// `passive.advertise`: one address for every client, or rules by the client's network.
#[derive(Debug)]
pub(crate) enum AdvertiseFile {
    One(String),
    ByNetwork(Vec<AdvertiseRuleFile>),
}

/// One rule of `passive.advertise`: clients from `from` (every client when absent) get
/// `address` (the address they connected to when absent).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AdvertiseRuleFile {
    pub from: Option<Vec<String>>,
    pub address: Option<String>,
}

impl<'de> Deserialize<'de> for AdvertiseFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AdvertiseVisitor;

        impl<'de> Visitor<'de> for AdvertiseVisitor {
            type Value = AdvertiseFile;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an IPv4 address or a list of {\"from\": [networks], \"address\": IP} rules",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AdvertiseFile, E> {
                Ok(AdvertiseFile::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<AdvertiseFile, A::Error> {
                let mut rules = Vec::new();
                while let Some(Object(rule)) = seq.next_element::<Object<AdvertiseRuleFile>>()? {
                    rules.push(rule);
                }
                Ok(AdvertiseFile::ByNetwork(rules))
            }
        }

        deserializer.deserialize_any(AdvertiseVisitor)
    }
}

/// A string or a list of strings, kept as written: a time window's `days`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct OneOrManyVisitor;

        impl<'de> Visitor<'de> for OneOrManyVisitor {
            type Value = OneOrMany;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(OneOrMany::Many(items))
            }
        }

        deserializer.deserialize_any(OneOrManyVisitor)
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PolicyFile {
    pub workers: Option<Scalar>,
    pub drain_timeout: Option<Scalar>,
    pub user: Option<String>,
    pub listeners: Option<Vec<Object<ListenerFile>>>,
    pub passive: Option<Object<PassiveFile>>,
    pub tls: Option<Object<TlsFile>>,
    pub backends: Option<BTreeMap<String, Object<BackendFile>>>,
    pub roles: Option<BTreeMap<String, Object<RoleFile>>>,
    pub users: Option<BTreeMap<String, Object<UserFile>>>,
    pub routing: Option<Object<RoutingFile>>,
    pub defaults: Option<Object<DefaultsFile>>,
    pub audit: Option<Object<AuditFile>>,
    pub access: Option<Object<AccessFile>>,
    /// Dry run when `false`: policy refusals are audited as `would_deny`, not enforced.
    pub enforce: Option<bool>,
    pub metrics: Option<Object<MetricsFile>>,
}

/// `metrics`: the loopback HTTP port of the Prometheus metrics.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MetricsFile {
    pub listen: Option<String>,
}

/// Global source-address rules and the prefix table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccessFile {
    pub allow_from: Option<Vec<String>>,
    pub deny_from: Option<Vec<String>>,
    pub allow_countries: Option<Vec<String>>,
    pub deny_countries: Option<Vec<String>>,
    pub allow_asns: Option<Vec<Scalar>>,
    pub deny_asns: Option<Vec<Scalar>>,
    pub prefix_table: Option<OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListenerFile {
    pub address: Option<String>,
    pub tls: Option<String>,
    pub require: Option<String>,
    pub proxy_protocol: Option<bool>,
    pub proxy_from: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PassiveFile {
    pub ports: Option<String>,
    pub advertise: Option<AdvertiseFile>,
    pub proxy_protocol: Option<bool>,
    pub proxy_from: Option<Vec<String>>,
    pub shared: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFile {
    pub certificate: Option<String>,
    pub private_key: Option<String>,
    pub certificates: Option<Vec<Object<TlsIdentityFile>>>,
    pub require: Option<String>,
}

/// One entry of `tls.certificates`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsIdentityFile {
    pub certificate: Option<String>,
    pub private_key: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BackendFile {
    pub servers: Option<Vec<String>>,
    pub balance: Option<String>,
    pub tls: Option<String>,
    pub source_address: Option<String>,
    pub ca_file: Option<String>,
    pub pinned_certificate: Option<String>,
    pub client_certificate: Option<String>,
    pub client_key: Option<String>,
    pub server_name: Option<String>,
    pub feature_probe: Option<bool>,
    pub health_check: Option<HealthCheckFile>,
    pub verify_uploads: Option<bool>,
}

/// `backends.NAME.health_check`: `false` (off), `true` (the defaults) or
/// `{ "interval": 10, "timeout": 3 }`.
#[derive(Debug)]
pub(crate) enum HealthCheckFile {
    Toggle(bool),
    Settings(HealthSettingsFile),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HealthSettingsFile {
    pub interval: Option<Scalar>,
    pub timeout: Option<Scalar>,
}

impl<'de> Deserialize<'de> for HealthCheckFile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct HealthVisitor;

        impl<'de> Visitor<'de> for HealthVisitor {
            type Value = HealthCheckFile;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("false, true or an object with interval and timeout")
            }

            fn visit_bool<E: de::Error>(self, on: bool) -> Result<HealthCheckFile, E> {
                Ok(HealthCheckFile::Toggle(on))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<HealthCheckFile, A::Error> {
                HealthSettingsFile::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(HealthCheckFile::Settings)
            }
        }

        deserializer.deserialize_any(HealthVisitor)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoleFile {
    pub allow: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserFile {
    pub role: Option<String>,
    pub backend: Option<String>,
    pub allow_from: Option<Vec<String>>,
    pub deny_from: Option<Vec<String>>,
    pub allow_countries: Option<Vec<String>>,
    pub deny_countries: Option<Vec<String>>,
    pub allow_asns: Option<Vec<Scalar>>,
    pub deny_asns: Option<Vec<Scalar>>,
    pub time_windows: Option<Vec<Object<TimeWindowFile>>>,
    pub allow_fxp_to: Option<Vec<String>>,
    pub tls_require: Option<String>,
    pub tls_session_reuse: Option<BoolOrWord>,
    pub audit_digest: Option<String>,
    pub limits: Option<Object<UserLimitsFile>>,
    pub timeouts: Option<Object<TimeoutsFile>>,
    /// The user's own `enforce`, else the top-level one.
    pub enforce: Option<bool>,
    pub paths: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeWindowFile {
    pub days: Option<OneOrMany>,
    pub hours: Option<String>,
    pub utc_offset: Option<String>,
    pub tz: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserLimitsFile {
    pub max_file_size: Option<Scalar>,
    pub rate: Option<Scalar>,
    pub user_rate: Option<Scalar>,
    pub sessions: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TimeoutsFile {
    pub login: Option<Scalar>,
    pub idle: Option<Scalar>,
    pub session: Option<Scalar>,
    pub data_connect: Option<Scalar>,
    pub session_during_transfer: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RoutingFile {
    pub user_at_host: Option<bool>,
    pub targets: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DefaultsFile {
    pub timeouts: Option<Object<TimeoutsFile>>,
    pub limits: Option<Object<GlobalLimitsFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GlobalLimitsFile {
    pub sessions_total: Option<Scalar>,
    pub sessions_per_ip: Option<Scalar>,
    pub failed_logins_per_ip: Option<Scalar>,
    pub failed_login_window: Option<Scalar>,
    pub ban: Option<Scalar>,
    pub max_file_size: Option<Scalar>,
    pub rate: Option<Scalar>,
    pub user_rate: Option<Scalar>,
    pub sessions_waiting_for_backend: Option<Scalar>,
    pub failed_login_delay_ms: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditFile {
    pub syslog: Option<Object<SyslogFile>>,
    pub file: Option<String>,
    pub mode: Option<String>,
    pub digest: Option<String>,
    pub filecopy: Option<Object<FilecopyFile>>,
    pub on_failure: Option<String>,
    pub integrity: Option<Object<IntegrityFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IntegrityFile {
    pub key_file: Option<String>,
    pub checkpoint_interval: Option<Scalar>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SyslogFile {
    pub facility: Option<String>,
    pub app_name: Option<String>,
    pub socket: Option<String>,
    pub cee: Option<bool>,
    pub format: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FilecopyFile {
    pub directory: Option<String>,
    pub retention_days: Option<Scalar>,
    pub on_failure: Option<String>,
}
