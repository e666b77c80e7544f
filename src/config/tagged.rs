//! Decoding one table of a spanned TOML document as a typed struct chosen by its `type` key,
//! keeping positions: serde cannot (an internally tagged enum buffers the table and loses every
//! span), so the caller picks the struct from `type` and [`typed`] decodes the rest of the table
//! with toml's own deserializer over the spanned values. The keys a struct accepts are asked of
//! its serde derive ([`keys_of`]), so a key that belongs to another type is reported by name,
//! with the keys that do apply, and no key list is kept by hand.

use super::error::ConfigError;
use serde::de::{DeserializeOwned, Deserializer, Error as _, Visitor};
use std::ops::Range;
use std::time::Duration;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// The field names serde's derive hands to `deserialize_struct`: the keys `T` accepts. Asked of
/// the type itself, so no list of keys is kept by hand.
pub(super) fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = serde::de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(Self::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(Self::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Error collection with the `[backend]` table's spans at hand.
pub(super) struct Check<'a, 'i> {
    pub(super) file: &'a str,
    pub(super) text: &'a str,
    pub(super) table: &'a DeTable<'i>,
    pub(super) whole: Range<usize>,
    pub(super) errors: &'a mut Vec<ConfigError>,
}

impl Check<'_, '_> {
    /// The span of `key`'s value, or of the whole table when the key is not set.
    pub(super) fn span(&self, key: &str) -> Range<usize> {
        self.table.get(key).map_or(self.whole.clone(), |v| v.span())
    }
    pub(super) fn err_at(&mut self, span: Option<Range<usize>>, msg: impl Into<String>, hint: Option<&str>) {
        let mut e = ConfigError::at(self.file, self.text, span, msg);
        if let Some(h) = hint {
            e = e.hint(h);
        }
        self.errors.push(e);
    }
    pub(super) fn err(&mut self, key: &str, msg: impl Into<String>, hint: Option<&str>) {
        let span = self.span(key);
        self.err_at(Some(span), msg, hint);
    }
    pub(super) fn argv(&mut self, key: &str, argv: &[String]) {
        if argv.first().is_none_or(|p| p.is_empty()) {
            self.err(key, format!("`{key}` needs at least a program"), None);
        }
    }
    pub(super) fn program(&mut self, key: &str, path: &str, default: &str) {
        if path.is_empty() {
            self.err(key, format!("`{key}` is empty"), Some(default));
        }
    }
    pub(super) fn timeout(&mut self, timeout: Duration) {
        // configctl and sysctl answer in seconds; ten minutes tolerates a very loaded box while
        // a hung backend still cannot stall failbacks for long.
        const MAX_BACKEND_TIMEOUT: Duration = Duration::from_secs(600);
        if timeout.is_zero() {
            self.err("timeout", "backend `timeout` must be longer than 0s", None);
        } else if timeout > MAX_BACKEND_TIMEOUT {
            self.err("timeout", "backend `timeout` must be at most 10m", None);
        }
    }
}

/// The top-level key whose value contains `span`.
fn key_at<'t>(table: &'t DeTable<'_>, span: &Range<usize>) -> Option<&'t str> {
    table
        .iter()
        .find(|(_, v)| v.span().start <= span.start && span.end <= v.span().end)
        .map(|(k, _)| &**k.get_ref())
}

/// Decodes the table as `T`: keys `T` does not have are each reported (naming the backend
/// type and what it takes), then the rest goes through serde, whose error keeps its span.
pub(super) fn typed<T: DeserializeOwned>(cx: &mut Check<'_, '_>, kind: &str) -> Option<T> {
    let keys = keys_of::<T>();
    let mut rest = DeTable::new();
    let mut bad = false;
    for (k, v) in cx.table.iter() {
        let name: &str = k.get_ref();
        if name == "type" {
            continue;
        }
        if keys.contains(&name) {
            rest.insert(k.clone(), v.clone());
        } else {
            bad = true;
            let hint = if keys.is_empty() {
                format!("the {kind} backend takes no keys besides `type`; remove it")
            } else {
                format!("the {kind} backend takes: {}", keys.join(", "))
            };
            cx.err_at(Some(v.span()), format!("`{name}` does not apply to the {kind} backend"), Some(&hint));
        }
    }
    let de = toml::de::ValueDeserializer::from(Spanned::new(cx.whole.clone(), DeValue::Table(rest)));
    match T::deserialize(de) {
        Ok(t) if !bad => Some(t),
        Ok(_) => None,
        Err(e) => {
            let msg = e.message().trim();
            let (msg, hint) = match msg.strip_prefix("missing field ") {
                Some(field) => (
                    format!("missing {field}"),
                    Some(format!(
                        "the {kind} backend needs {field}; examples/failbackd.toml lists every key"
                    )),
                ),
                // serde names the expected type, not the key: name the key the span is in.
                None => match e.span().and_then(|sp| key_at(cx.table, &sp)) {
                    Some(key) => (format!("`{key}`: {msg}"), None),
                    None => (msg.to_string(), None),
                },
            };
            cx.err_at(e.span().or(Some(cx.whole.clone())), msg, hint.as_deref());
            None
        }
    }
}
