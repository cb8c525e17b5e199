//! Field errors and the collector that gathers every broken field of a body at once.

use std::fmt;

use serde_json::{Map, Number, Value};

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

/// Declares a field's error enum and the text a client sees for each variant. A text is a
/// format string, so a limit is named by its constant (`"at most {MAX_NAME_CHARS}"`), never
/// repeated as a literal.
macro_rules! error_texts {
    ($name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),* }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self { $(Self::$variant => write!(f, $text)),* }
            }
        }
    };
}
pub(crate) use error_texts;

/// `from_checked`: a value that was checked where it was made, wrapped as it is. The guard
/// builds every value with `new` before it crosses the component boundary (`wit/guard.wit`),
/// and the database's CHECK constraints hold the same rules for what it gives back, so a
/// value from either is not checked a second time.
macro_rules! from_checked {
    ($($type:ident($raw:ty)),* $(,)?) => {
        $(impl $type {
            pub fn from_checked(raw: $raw) -> Self {
                Self(raw)
            }
        })*
    };
}
pub(crate) use from_checked;

/// The methods of a whole number kept within `range`, whose error enum has `NotAnInteger`
/// and `OutOfRange`: `new` checks the range, `parse` reads it from JSON (`integer`), `get`
/// gives it back.
macro_rules! ranged_integer {
    ($($type:ident: $range:expr, $error:ident;)*) => {
        $(impl $type {
            pub fn new(n: i64) -> Result<Self, $error> {
                if ($range).contains(&n) {
                    Ok(Self(n))
                } else {
                    Err($error::OutOfRange)
                }
            }

            pub fn parse(value: &serde_json::Value) -> Result<Self, $error> {
                Self::new(
                    $crate::fields::integer(value)
                        .ok_or($error::NotAnInteger)?
                        .ok_or($error::OutOfRange)?,
                )
            }

            pub fn get(self) -> i64 {
                self.0
            }
        })*
    };
}
pub(crate) use ranged_integer;

/// A JSON number with an integral value, as JSON Schema's `integer` takes it (`5`, `5.0`,
/// `5e2`, `-0`): `None` if `value` is not a number or not whole (`2.5`, `"5"`), `Some(None)`
/// if it is whole but outside `i64`. Read from the literal's own digits, never a float.
pub(crate) fn integer(value: &Value) -> Option<Option<i64>> {
    let decimal = Decimal::parse(value.as_number()?)?;
    let magnitude = decimal.to_scaled(0)?;
    Some(magnitude.and_then(|m| {
        if decimal.negative {
            m.checked_neg()
        } else {
            Some(m)
        }
    }))
}

/// An integer written as text, as a path or query carries one: plain digits (`007`), or a
/// JSON number with a whole value (`7.0`, `7e0`), as JSON Schema's `integer` takes it.
/// `None` if it is neither, or outside `i64`.
pub fn integer_text(text: &str) -> Option<i64> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    integer(&Value::Number(text.parse().ok()?))?
}

/// The digits of a JSON number literal: `-12.50e1` -> digits "1250", exponent -1.
pub(crate) struct Decimal {
    pub(crate) negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    pub(crate) fn parse(number: &Number) -> Option<Self> {
        let text = number.to_string();
        let text = text.as_str();
        let (negative, text) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (mantissa, exponent) = match text.split_once(['e', 'E']) {
            Some((m, e)) => (m, e.parse::<i64>().ok()?),
            None => (text, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if int.is_empty() || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let frac_len = i64::try_from(frac.len()).ok()?;
        let digits = format!("{int}{frac}").trim_start_matches('0').to_owned();
        Some(Self {
            negative,
            digits,
            exponent: exponent.checked_sub(frac_len)?,
        })
    }

    pub(crate) fn is_zero(&self) -> bool {
        self.digits.bytes().all(|b| b == b'0')
    }

    /// The value times 10^`scale` as an integer: `None` if that is not whole (too many
    /// decimals), `Some(None)` if it does not fit.
    pub(crate) fn to_scaled(&self, scale: i64) -> Option<Option<i64>> {
        let shift = self.exponent.checked_add(scale)?;
        let digits = if shift < 0 {
            let keep = usize::try_from(i64::try_from(self.digits.len()).ok()? + shift).unwrap_or(0);
            let (kept, dropped) = self.digits.split_at(keep.min(self.digits.len()));
            if !dropped.bytes().all(|b| b == b'0') {
                return None;
            }
            kept.to_owned()
        } else if self.is_zero() {
            String::new()
        } else if shift > 18 {
            return Some(None);
        } else {
            format!(
                "{}{}",
                self.digits,
                "0".repeat(usize::try_from(shift).ok()?)
            )
        };
        if digits.is_empty() {
            return Some(Some(0));
        }
        // i64 holds at most 19 digits; `parse` refuses the 19-digit ones above its maximum.
        if digits.len() > 19 {
            return Some(None);
        }
        Some(digits.parse::<i64>().ok())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn int(text: &str) -> Option<Option<i64>> {
        integer(&serde_json::from_str(text).unwrap())
    }

    #[test]
    fn integers_are_whole_numbers_in_any_notation() {
        assert_eq!(int("5"), Some(Some(5)));
        assert_eq!(int("-5"), Some(Some(-5)));
        assert_eq!(int("-0"), Some(Some(0)));
        assert_eq!(int("263808.0"), Some(Some(263_808)));
        assert_eq!(int("1e3"), Some(Some(1000)));
        assert_eq!(int("1.5E1"), Some(Some(15)));
        assert_eq!(int("1500e-2"), Some(Some(15)));
        assert_eq!(int("0e-300"), Some(Some(0)));
        assert_eq!(int("9223372036854775807"), Some(Some(i64::MAX)));
        assert_eq!(int("9223372036854775807.000"), Some(Some(i64::MAX)));
        assert_eq!(int("-9223372036854775807"), Some(Some(-i64::MAX)));
    }

    #[test]
    fn integers_in_text_take_digits_or_whole_json_numbers() {
        for (text, n) in [
            ("7", 7),
            ("007", 7),
            ("7.0", 7),
            ("7e0", 7),
            ("70e-1", 7),
            ("-3", -3),
        ] {
            assert_eq!(integer_text(text), Some(n), "{text}");
        }
        for bad in [
            "",
            "+7",
            " 7",
            "7.5",
            "0x7",
            "x",
            "1e19",
            "99999999999999999999",
            "7.",
        ] {
            assert_eq!(integer_text(bad), None, "{bad}");
        }
    }

    #[test]
    fn integers_outside_i64_are_told_apart_from_fractions() {
        assert_eq!(int("9223372036854775808"), Some(None));
        assert_eq!(int("1e19"), Some(None));
        assert_eq!(int("1e300"), Some(None));
        assert_eq!(int("99999999999999999999999"), Some(None));
        assert_eq!(int("2.5"), None);
        assert_eq!(int("1e-300"), None);
        assert_eq!(int("\"5\""), None);
        assert_eq!(int("null"), None);
    }
}
