//! Field errors and the collector that gathers every broken field of a body at once.

use std::fmt;

use serde_json::{Map, Value};

/// One broken field of a request body or query; the message is what a client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl ToString) -> Self {
        Self {
            field: field.into(),
            message: message.to_string(),
        }
    }
}

/// Declares a field's error enum and the text a client sees for each variant.
macro_rules! error_texts {
    ($name:ident { $($variant:ident => $text:expr),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),* }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(match self { $(Self::$variant => $text),* })
            }
        }
    };
}
pub(crate) use error_texts;

/// A JSON integer literal: `None` if `value` is not an integer literal at all (`2.0`, `1e3`,
/// `"5"`), `Some(None)` if it is one outside `i64`.
pub(crate) fn integer(value: &Value) -> Option<Option<i64>> {
    let number = value.as_number()?;
    let text = number.to_string();
    let digits = text.strip_prefix('-').unwrap_or(&text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<i64>().ok())
}

/// Collects every field's failure instead of stopping at the first.
pub(crate) struct Fields<'a> {
    body: &'a Map<String, Value>,
    pub(crate) errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    /// Starts with an error for every member of `body` not in `known`.
    pub(crate) fn new(body: &'a Map<String, Value>, known: &[&str]) -> Self {
        let errors = body
            .keys()
            .filter(|key| !known.contains(&key.as_str()))
            .map(|key| FieldError::new(key.clone(), "is not a known field"))
            .collect();
        Self { body, errors }
    }

    /// The parsed field if present and valid; records the error if present and invalid.
    pub(crate) fn optional<T, E: fmt::Display>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&Value) -> Result<T, E>,
    ) -> Option<T> {
        let value = self.body.get(name)?;
        match parse(value) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                self.errors.push(FieldError::new(name, err));
                None
            }
        }
    }

    pub(crate) fn required<T, E: fmt::Display>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&Value) -> Result<T, E>,
    ) -> Option<T> {
        if !self.body.contains_key(name) {
            self.errors.push(FieldError::new(name, "is required"));
            return None;
        }
        self.optional(name, parse)
    }
}
