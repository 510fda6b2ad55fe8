//! Which keys each object of the policy file may hold, and a pass that holds the parsed
//! document to it before serde builds the raw model of `file.rs`.
//!
//! serde stops at the first unknown key or wrong JSON type, but `--check` must list every
//! problem of a file in one run. So the document is parsed into a [`Value`] first and
//! [`sift`]ed here: every unknown key is reported and removed, and every value is judged on
//! its own (by serde, through the raw struct that holds it), so that a wrong one is reported
//! at its own path and taken out of the way of the rest, which is then validated as usual.
//!
//! The key names are those of the raw structs themselves: serde's derive names them when it
//! asks for a struct ([`keys_of`]), so `file.rs` stays the one list of keys. The tables here
//! only say which keys hold objects, lists or maps that are judged element by element; a
//! test checks them against the raw model. The raw structs still deny unknown fields: if
//! anything ever got past this pass, serde would refuse it instead of ignoring it.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde_json::{Map, Value};

use super::file::{
    AccessFile, AuditFile, BackendFile, DefaultsFile, FilecopyFile, GlobalLimitsFile,
    IntegrityFile, ListenerFile, MetricsFile, PassiveFile, PolicyFile, RoleFile, RoutingFile,
    SyslogFile, TimeWindowFile, TimeoutsFile, TlsFile, TlsIdentityFile, UserFile, UserLimitsFile,
};
use super::locate::{JsonPath, Target};

/// One raw struct of `file.rs`: an object of the policy file.
pub(crate) struct Section {
    /// Its keys, as serde knows them.
    keys: fn() -> &'static [&'static str],
    /// Deserializes the struct from an object: given one key at a time, judges that key's
    /// value alone, with serde's own message when it is wrong.
    check: fn(&Value) -> Result<(), serde_json::Error>,
    /// The keys whose values are judged in parts; every other key holds one plain value.
    nested: &'static [(&'static str, Shape)],
}

/// What a nested key holds.
#[derive(Clone, Copy)]
enum Shape {
    /// An object.
    One(&'static Section),
    /// A list, judged element by element.
    List(Item),
    /// A map from names, judged entry by entry.
    Map(Item),
}

/// An element of a list or map.
#[derive(Clone, Copy)]
enum Item {
    /// A plain value (a string or a number).
    Plain,
    /// An object.
    Object(&'static Section),
}

const fn section<T: DeserializeOwned>(nested: &'static [(&'static str, Shape)]) -> Section {
    Section {
        keys: keys_of::<T>,
        check: check::<T>,
        nested,
    }
}

/// The whole file.
pub(crate) static POLICY: Section = section::<PolicyFile>(&[
    ("listeners", Shape::List(Item::Object(&LISTENER))),
    ("passive", Shape::One(&PASSIVE)),
    ("tls", Shape::One(&TLS)),
    ("backends", Shape::Map(Item::Object(&BACKEND))),
    ("roles", Shape::Map(Item::Object(&ROLE))),
    ("users", Shape::Map(Item::Object(&USER))),
    ("routing", Shape::One(&ROUTING)),
    ("defaults", Shape::One(&DEFAULTS)),
    ("audit", Shape::One(&AUDIT)),
    ("access", Shape::One(&ACCESS)),
    ("metrics", Shape::One(&METRICS)),
]);
static METRICS: Section = section::<MetricsFile>(&[]);
static ACCESS: Section = section::<AccessFile>(&[
    ("allow_from", Shape::List(Item::Plain)),
    ("deny_from", Shape::List(Item::Plain)),
    ("allow_countries", Shape::List(Item::Plain)),
    ("deny_countries", Shape::List(Item::Plain)),
    ("allow_asns", Shape::List(Item::Plain)),
    ("deny_asns", Shape::List(Item::Plain)),
]);
static LISTENER: Section = section::<ListenerFile>(&[("proxy_from", Shape::List(Item::Plain))]);
static PASSIVE: Section = section::<PassiveFile>(&[("proxy_from", Shape::List(Item::Plain))]);
static TLS: Section =
    section::<TlsFile>(&[("certificates", Shape::List(Item::Object(&TLS_IDENTITY)))]);
static TLS_IDENTITY: Section = section::<TlsIdentityFile>(&[]);
/// `health_check` is `false`, `true` or an object, judged as one value.
static BACKEND: Section = section::<BackendFile>(&[("servers", Shape::List(Item::Plain))]);
static ROLE: Section = section::<RoleFile>(&[("allow", Shape::List(Item::Plain))]);
static USER: Section = section::<UserFile>(&[
    ("allow_from", Shape::List(Item::Plain)),
    ("deny_from", Shape::List(Item::Plain)),
    ("allow_countries", Shape::List(Item::Plain)),
    ("deny_countries", Shape::List(Item::Plain)),
    ("allow_asns", Shape::List(Item::Plain)),
    ("deny_asns", Shape::List(Item::Plain)),
    ("time_windows", Shape::List(Item::Object(&TIME_WINDOW))),
    ("allow_fxp_to", Shape::List(Item::Plain)),
    ("limits", Shape::One(&USER_LIMITS)),
    ("timeouts", Shape::One(&TIMEOUTS)),
    ("paths", Shape::List(Item::Plain)),
]);
/// `days` is a string or a list of strings, judged as one value.
static TIME_WINDOW: Section = section::<TimeWindowFile>(&[]);
static USER_LIMITS: Section = section::<UserLimitsFile>(&[]);
static TIMEOUTS: Section = section::<TimeoutsFile>(&[]);
static ROUTING: Section = section::<RoutingFile>(&[("targets", Shape::Map(Item::Plain))]);
static DEFAULTS: Section = section::<DefaultsFile>(&[
    ("timeouts", Shape::One(&TIMEOUTS)),
    ("limits", Shape::One(&GLOBAL_LIMITS)),
]);
static GLOBAL_LIMITS: Section = section::<GlobalLimitsFile>(&[]);
static AUDIT: Section = section::<AuditFile>(&[
    ("syslog", Shape::One(&SYSLOG)),
    ("filecopy", Shape::One(&FILECOPY)),
    ("integrity", Shape::One(&INTEGRITY)),
]);
static SYSLOG: Section = section::<SyslogFile>(&[]);
static FILECOPY: Section = section::<FilecopyFile>(&[]);
static INTEGRITY: Section = section::<IntegrityFile>(&[]);

fn check<T: DeserializeOwned>(value: &Value) -> Result<(), serde_json::Error> {
    T::deserialize(value).map(drop)
}

/// The keys of raw struct `T`: serde's derive names them when it asks for a struct. Empty
/// for anything that is not a struct with named fields.
fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut keys: &'static [&'static str] = &[];
    let _ = T::deserialize(KeyNames(&mut keys));
    keys
}

/// A deserializer that only records the field names it is given, then gives up.
struct KeyNames<'k>(&'k mut &'static [&'static str]);

impl<'de> Deserializer<'de> for KeyNames<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = fields;
        Err(de::Error::custom("only the keys were wanted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// A problem found by [`sift`].
#[derive(Debug)]
pub(crate) struct Problem {
    pub path: JsonPath,
    pub target: Target,
    pub message: String,
}

/// What [`sift`] found.
#[derive(Debug, Default)]
pub(crate) struct Sifted {
    /// Unknown keys (at the key) and wrong values (at the value).
    pub problems: Vec<Problem>,
    /// Where a wrong value was removed or replaced by an empty stand-in (`{}` or `""`) that
    /// keeps the indexes of a list and the names of a map. Other complaints about these
    /// paths or anything under them would be about the removal or the stand-in, not about
    /// the file.
    pub broken: Vec<JsonPath>,
}

/// Holds `document` to [`POLICY`]: afterwards it deserializes into the raw model, unless it
/// is not an object at all (left for that deserialization to report).
pub(crate) fn sift(document: &mut Value) -> Sifted {
    let mut sifted = Sifted::default();
    sifted.object(document, &JsonPath::root(), &POLICY);
    sifted
}

/// How a value is presented to the struct that holds it at `key`.
#[derive(Clone, Copy)]
enum Wrap<'a> {
    /// As the value of the key.
    Bare,
    /// As the only element of a list.
    InList,
    /// As the only entry of a map, under this name.
    InMap(&'a str),
}

/// serde's verdict on `value` alone, as it would stand in `section` at `key`. The value is
/// lent to a small document for this and put back.
fn judge(section: &Section, key: &str, wrap: Wrap<'_>, value: &mut Value) -> Result<(), String> {
    let taken = std::mem::take(value);
    let inner = match wrap {
        Wrap::Bare => taken,
        Wrap::InList => Value::Array(vec![taken]),
        Wrap::InMap(name) => {
            let mut entry = Map::new();
            entry.insert(name.to_owned(), taken);
            Value::Object(entry)
        }
    };
    let mut document = Map::new();
    document.insert(key.to_owned(), inner);
    let mut document = Value::Object(document);
    let verdict = (section.check)(&document).map_err(|err| err.to_string());
    let lent = document.get_mut(key).and_then(|inner| match wrap {
        Wrap::Bare => Some(inner),
        Wrap::InList => inner.get_mut(0),
        Wrap::InMap(name) => inner.get_mut(name),
    });
    if let Some(lent) = lent {
        *value = std::mem::take(lent);
    }
    verdict
}

impl Sifted {
    fn wrong(&mut self, path: &JsonPath, message: &str) {
        self.problems.push(Problem {
            message: format!("{path}: {message}"),
            path: path.clone(),
            target: Target::Value,
        });
    }

    /// Sifts an object of `section` in place; anything else is left alone.
    fn object(&mut self, value: &mut Value, path: &JsonPath, section: &Section) {
        let Value::Object(map) = value else {
            return;
        };
        let keys = (section.keys)();
        map.retain(|key, _| {
            let known = keys.contains(&key.as_str());
            if !known {
                let path = path.key(key);
                let err = <serde_json::Error as de::Error>::unknown_field(key, keys);
                self.problems.push(Problem {
                    message: format!("{path}: {err}"),
                    path,
                    target: Target::Key,
                });
            }
            known
        });
        let names: Vec<String> = map.keys().cloned().collect();
        for key in names {
            let Some(slot) = map.get_mut(&key) else {
                continue;
            };
            let path = path.key(&key);
            let shape = section
                .nested
                .iter()
                .find(|(nested, _)| *nested == key)
                .map(|&(_, shape)| shape);
            let keep = match (shape, &mut *slot) {
                (Some(Shape::One(inner)), Value::Object(_)) => {
                    self.object(slot, &path, inner);
                    true
                }
                (Some(Shape::List(item)), Value::Array(elements)) => {
                    let mut keep = true;
                    for (i, element) in elements.iter_mut().enumerate() {
                        let path = path.index(i);
                        keep &= self.element(section, &key, Wrap::InList, item, element, path);
                    }
                    keep
                }
                (Some(Shape::Map(item)), Value::Object(entries)) => {
                    let mut keep = true;
                    for (name, entry) in entries.iter_mut() {
                        let path = path.key(name);
                        keep &= self.element(section, &key, Wrap::InMap(name), item, entry, path);
                    }
                    keep
                }
                // A plain value, or a container of the wrong kind.
                _ => match judge(section, &key, Wrap::Bare, slot) {
                    Ok(()) => true,
                    Err(message) => {
                        self.wrong(&path, &message);
                        false
                    }
                },
            };
            if !keep {
                map.remove(&key);
                self.broken.push(path);
            }
        }
    }

    /// Sifts one element of a list or map. A wrong element is reported and replaced by an
    /// empty stand-in; `false` when even that does not fit, and the whole list or map must go.
    fn element(
        &mut self,
        section: &Section,
        key: &str,
        wrap: Wrap<'_>,
        item: Item,
        value: &mut Value,
        path: JsonPath,
    ) -> bool {
        if let (Item::Object(inner), Value::Object(_)) = (item, &*value) {
            // Each of its keys is judged there; together they cannot be wrong.
            self.object(value, &path, inner);
            return true;
        }
        let Err(message) = judge(section, key, wrap, value) else {
            return true;
        };
        self.wrong(&path, &message);
        self.broken.push(path);
        *value = match item {
            Item::Object(_) => Value::Object(Map::new()),
            Item::Plain => Value::String(String::new()),
        };
        judge(section, key, wrap, value).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key of every raw struct, each used at least once, with a value of its type.
    const EVERY_KEY: &str = r#"{
  "workers": "auto",
  "drain_timeout": 30,
  "user": "ftpgate",
  "enforce": true,
  "listeners": [{ "address": "0.0.0.0:21", "tls": "none", "require": "none",
                  "proxy_protocol": true, "proxy_from": ["10.0.0.5/32"] }],
  "passive": { "ports": "50000-50999", "advertise": "203.0.113.10", "proxy_protocol": true,
               "proxy_from": ["10.0.0.5/32"] , "shared": false },
  "tls": { "certificate": "/c.pem", "private_key": "/k.pem", "require": "none",
           "certificates": [{ "certificate": "/e.pem", "private_key": "/ek.pem" }] },
  "backends": { "b": { "servers": ["10.0.0.1:21"], "balance": "round-robin", "tls": "explicit",
                       "source_address": "10.0.0.2", "ca_file": "/ca.pem",
                       "pinned_certificate": "/pin.pem", "client_certificate": "/c.pem",
                       "client_key": "/k.pem", "server_name": "ftp.example",
                       "feature_probe": true, "health_check": false,
                       "verify_uploads": false } },
  "roles": { "r": { "allow": ["RETR"] } },
  "users": { "u": { "role": "r", "backend": "b", "allow_from": ["10.0.0.0/8"],
                    "deny_from": ["10.0.0.9"], "allow_countries": ["DE"],
                    "deny_countries": ["KP"], "allow_asns": [64500], "deny_asns": ["AS64666"],
                    "time_windows": [{ "days": "mon-fri", "hours": "08:00-18:00",
                                       "utc_offset": "Z", "tz": "UTC" }],
                    "allow_fxp_to": ["192.0.2.0/24"],
                    "tls_require": "login", "tls_session_reuse": false,
                    "audit_digest": "none",
                    "limits": { "max_file_size": 1, "rate": "1MiB/s", "user_rate": 1,
                                "sessions": 1 },
                    "timeouts": { "login": 1, "idle": 1, "session": 1, "data_connect": 1,
                                  "session_during_transfer": "cut" },
                    "enforce": false, "paths": ["/in"] } },
  "routing": { "user_at_host": false, "targets": { "t": "b" } },
  "defaults": { "timeouts": { "login": 1, "idle": 1, "session": 1, "data_connect": 1,
                              "session_during_transfer": "finish" },
                "limits": { "sessions_total": 1, "sessions_per_ip": 1,
                            "failed_logins_per_ip": 1, "failed_login_window": 1, "ban": 1,
                            "max_file_size": 1, "rate": 1, "user_rate": 1,
                            "sessions_waiting_for_backend": 1,
                            "failed_login_delay_ms": 1 } },
  "access": { "allow_from": ["10.0.0.0/8"], "deny_from": ["10.9.0.0/16"],
              "allow_countries": ["DE"], "deny_countries": ["KP"], "allow_asns": [64500],
              "deny_asns": [64666], "prefix_table": "/p.tsv" },
  "audit": { "syslog": { "facility": "ftp", "app_name": "x", "socket": "/l", "cee": true,
                         "format": "rfc3164" },
             "file": "/a.jsonl", "mode": "monitor", "digest": "sha256",
             "on_failure": "continue",
             "filecopy": { "directory": "/d", "retention_days": 1, "on_failure": "abort" },
             "integrity": { "key_file": "/k", "checkpoint_interval": 60 } },
  "metrics": { "listen": "127.0.0.1:9464" }
}"#;

    /// Checks `value` against `section` and every section below it: all of the section's
    /// keys are present (in at least one of the objects given), nested keys are keys of the
    /// struct, and every key the tables call plain holds a plain value.
    fn covers(section: &Section, objects: &[&Value], path: &str) {
        let keys = (section.keys)();
        assert!(!keys.is_empty(), "{path}: no keys; is it a struct?");
        for (nested, _) in section.nested {
            assert!(
                keys.contains(nested),
                "{path}.{nested}: not a key of the struct"
            );
        }
        for key in keys {
            let values: Vec<&Value> = objects.iter().filter_map(|o| o.get(key)).collect();
            assert!(!values.is_empty(), "{path}.{key}: not in EVERY_KEY");
            let plain = |v: &Value| !v.is_object() && !v.is_array();
            let shape = section.nested.iter().find(|(n, _)| n == key).map(|s| s.1);
            let path = format!("{path}.{key}");
            match shape {
                None => assert!(values.iter().all(|v| plain(v)), "{path}: not plain"),
                Some(Shape::One(inner)) => covers(inner, &values, &path),
                Some(Shape::List(item)) => {
                    let elements: Vec<&Value> = values
                        .iter()
                        .filter_map(|v| v.as_array())
                        .flatten()
                        .collect();
                    assert!(!elements.is_empty(), "{path}: no elements");
                    match item {
                        Item::Plain => assert!(elements.iter().all(|v| plain(v)), "{path}"),
                        Item::Object(inner) => covers(inner, &elements, &path),
                    }
                }
                Some(Shape::Map(item)) => {
                    let entries: Vec<&Value> = values
                        .iter()
                        .filter_map(|v| v.as_object())
                        .flat_map(|m| m.values())
                        .collect();
                    assert!(!entries.is_empty(), "{path}: no entries");
                    match item {
                        Item::Plain => assert!(entries.iter().all(|v| plain(v)), "{path}"),
                        Item::Object(inner) => covers(inner, &entries, &path),
                    }
                }
            }
        }
    }

    #[test]
    fn the_tables_agree_with_the_raw_model() {
        let mut document: Value = serde_json::from_str(EVERY_KEY).expect("JSON");
        let original = document.clone();
        let sifted = sift(&mut document);
        assert!(sifted.problems.is_empty(), "{sifted:?}");
        assert!(sifted.broken.is_empty(), "{sifted:?}");
        assert_eq!(
            document, original,
            "sifting a good document changes nothing"
        );
        // The raw model takes every key (it still denies unknown ones).
        let raw = serde_json::from_str::<super::super::file::Object<PolicyFile>>(EVERY_KEY);
        assert!(raw.is_ok(), "{raw:?}");
        covers(&POLICY, &[&original], "");
    }

    #[test]
    fn keys_come_from_serde() {
        assert_eq!(keys_of::<RoleFile>(), ["allow"]);
        assert_eq!(
            keys_of::<PassiveFile>(),
            [
                "ports",
                "advertise",
                "proxy_protocol",
                "proxy_from",
                "shared"
            ],
            "in declaration order"
        );
        assert!(keys_of::<String>().is_empty());
    }

    #[test]
    fn wrong_values_are_replaced_or_removed() {
        let mut document: Value = serde_json::from_str(
            r#"{ "listeners": [{ "address": 1 }, 7, { "address": "a", "x": 1 }],
                 "roles": { "r": { "allow": ["RETR", 5, "LIST"] }, "s": [] },
                 "workers": {}, "y": 2 }"#,
        )
        .expect("JSON");
        let sifted = sift(&mut document);
        // The order follows the map's, which is not the file's; the loader sorts by position.
        let mut found: Vec<(String, Target, &str)> = sifted
            .problems
            .iter()
            .map(|p| (p.path.to_string(), p.target, p.message.as_str()))
            .collect();
        found.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            found,
            [
                (
                    "listeners[0].address".to_owned(),
                    Target::Value,
                    "listeners[0].address: invalid type: integer `1`, expected a string"
                ),
                (
                    "listeners[1]".to_owned(),
                    Target::Value,
                    "listeners[1]: invalid type: integer `7`, expected an object"
                ),
                (
                    "listeners[2].x".to_owned(),
                    Target::Key,
                    "listeners[2].x: unknown field `x`, expected one of `address`, `tls`, \
                     `require`, `proxy_protocol`, `proxy_from`"
                ),
                (
                    "roles.r.allow[1]".to_owned(),
                    Target::Value,
                    "roles.r.allow[1]: invalid type: integer `5`, expected a string"
                ),
                (
                    "roles.s".to_owned(),
                    Target::Value,
                    "roles.s: invalid type: sequence, expected an object"
                ),
                (
                    "workers".to_owned(),
                    Target::Value,
                    "workers: invalid type: map, expected a number or a string"
                ),
                (
                    "y".to_owned(),
                    Target::Key,
                    "y: unknown field `y`, expected one of `workers`, `drain_timeout`, `user`, `listeners`, `passive`, \
                     `tls`, `backends`, `roles`, `users`, `routing`, `defaults`, `audit`, `access`, \
                     `enforce`, `metrics`"
                ),
            ]
        );
        let mut broken: Vec<String> = sifted.broken.iter().map(ToString::to_string).collect();
        broken.sort();
        assert_eq!(
            broken,
            [
                "listeners[0].address",
                "listeners[1]",
                "roles.r.allow[1]",
                "roles.s",
                "workers"
            ]
        );
        let expected: Value = serde_json::from_str(
            r#"{ "listeners": [{}, {}, { "address": "a" }],
                 "roles": { "r": { "allow": ["RETR", "", "LIST"] }, "s": {} } }"#,
        )
        .expect("JSON");
        assert_eq!(document, expected);
        // A document that is not an object is left to the deserialization.
        let mut list = Value::Array(Vec::new());
        let sifted = sift(&mut list);
        assert!(sifted.problems.is_empty() && sifted.broken.is_empty());
    }
}
