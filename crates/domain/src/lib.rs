//! Domain types. Each is parsed once from raw JSON and is valid by construction; every
//! failure is a typed error whose text is what a client sees for that field.

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

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_PRICE_CENTS: i64 = 1_000_000_000 * 100;
pub const MAX_STOCK: i64 = 1_000_000_000;
pub const MAX_SKU_CHARS: usize = 64;

macro_rules! error_texts {
    ($name:ident { $($variant:ident => $text:expr),* $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),* }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(match self { $(Self::$variant => $text),* })
            }
        }
    };
}

error_texts!(NameError {
    NotAString => "must be a string",
    Empty => "must not be empty",
    TooLong => "must be at most 200 characters",
});

error_texts!(DescriptionError {
    NotAString => "must be a string",
    TooLong => "must be at most 2000 characters",
});

error_texts!(PriceError {
    NotANumber => "must be a number",
    Negative => "must not be negative",
    TooPrecise => "must have at most 2 decimal places",
    TooLarge => "must be at most 1000000000",
});

error_texts!(StockError {
    NotAnInteger => "must be an integer",
    OutOfRange => "must be between 0 and 1000000000",
});

error_texts!(CategoryIdError {
    NotAnInteger => "must be an integer or null",
    OutOfRange => "must be at least 1",
});

error_texts!(SkuError {
    NotAString => "must be a string or null",
    BadLength => "must be 1 to 64 characters",
    BadCharacter => "may contain only A-Z a-z 0-9 - _ .",
});

/// A product name: trimmed, 1 to 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub fn parse(value: &Value) -> Result<Self, NameError> {
        let text = value.as_str().ok_or(NameError::NotAString)?.trim();
        match text.chars().count() {
            0 => Err(NameError::Empty),
            n if n > MAX_NAME_CHARS => Err(NameError::TooLong),
            _ => Ok(Self(text.to_owned())),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A description of at most 2000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub fn parse(value: &Value) -> Result<Self, DescriptionError> {
        let text = value.as_str().ok_or(DescriptionError::NotAString)?;
        if text.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(DescriptionError::TooLong);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A price in exact minor units (cents): parsed from the JSON number's own digits, never
/// through a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Price(i64);

impl Price {
    pub fn parse(value: &Value) -> Result<Self, PriceError> {
        match value {
            Value::Number(number) => Self::parse_number(number),
            _ => Err(PriceError::NotANumber),
        }
    }

    fn parse_number(number: &Number) -> Result<Self, PriceError> {
        let decimal = Decimal::parse(&number.to_string()).ok_or(PriceError::NotANumber)?;
        if decimal.negative && !decimal.is_zero() {
            return Err(PriceError::Negative);
        }
        let cents = decimal.to_scaled(2).ok_or(PriceError::TooPrecise)?;
        match cents {
            Some(cents) if cents <= MAX_PRICE_CENTS => Ok(Self(cents)),
            _ => Err(PriceError::TooLarge),
        }
    }

    pub fn from_cents(cents: i64) -> Self {
        Self(cents)
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// The price as a JSON number with no trailing zeros: 1250 -> 12.5, 1200 -> 12.
    pub fn to_json(self) -> Number {
        let (units, cents) = (self.0 / 100, (self.0 % 100).abs());
        let text = match cents {
            0 => units.to_string(),
            c if c % 10 == 0 => format!("{units}.{}", c / 10),
            c => format!("{units}.{c:02}"),
        };
        text.parse().unwrap_or_else(|_| Number::from(units))
    }
}

/// The digits of a JSON number literal: `-12.50e1` -> digits "1250", exponent -1.
struct Decimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl Decimal {
    fn parse(text: &str) -> Option<Self> {
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

    fn is_zero(&self) -> bool {
        self.digits.bytes().all(|b| b == b'0')
    }

    /// The value times 10^`scale` as an integer: `None` if that is not whole (too many
    /// decimals), `Some(None)` if it does not fit.
    fn to_scaled(&self, scale: i64) -> Option<Option<i64>> {
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
        if digits.len() > 18 {
            return Some(None);
        }
        Some(digits.parse::<i64>().ok())
    }
}

/// A stock level: 0 to 1,000,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock(i64);

impl Stock {
    pub fn parse(value: &Value) -> Result<Self, StockError> {
        let n = integer(value).ok_or(StockError::NotAnInteger)?;
        match n {
            Some(n) if (0..=MAX_STOCK).contains(&n) => Ok(Self(n)),
            _ => Err(StockError::OutOfRange),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A category id: an integer of at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryId(i64);

impl CategoryId {
    pub fn parse(value: &Value) -> Result<Option<Self>, CategoryIdError> {
        if value.is_null() {
            return Ok(None);
        }
        match integer(value).ok_or(CategoryIdError::NotAnInteger)? {
            Some(n) if n >= 1 => Ok(Some(Self(n))),
            _ => Err(CategoryIdError::OutOfRange),
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A stock-keeping unit: 1 to 64 of `A-Z a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    pub fn parse(value: &Value) -> Result<Option<Self>, SkuError> {
        let text = match value {
            Value::Null => return Ok(None),
            Value::String(text) => text,
            _ => return Err(SkuError::NotAString),
        };
        if text.is_empty() || text.chars().count() > MAX_SKU_CHARS {
            return Err(SkuError::BadLength);
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(SkuError::BadCharacter);
        }
        Ok(Some(Self(text.clone())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A JSON integer literal: `None` if not an integer at all, `Some(None)` if out of i64.
/// `None` if `value` is not an integer literal; `Some(None)` if it is one outside `i64`.
pub(crate) fn integer(value: &Value) -> Option<Option<i64>> {
    let number = value.as_number()?;
    let text = number.to_string();
    let digits = text.strip_prefix('-').unwrap_or(&text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<i64>().ok())
}

const PRODUCT_FIELDS: &[&str] = &[
    "name",
    "description",
    "price",
    "stock",
    "category_id",
    "sku",
];

/// A product to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub name: ProductName,
    pub description: Description,
    pub price: Price,
    pub stock: Stock,
    pub category_id: Option<CategoryId>,
    pub sku: Option<Sku>,
}

/// The fields of a product to change; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductPatch {
    pub name: Option<ProductName>,
    pub description: Option<Description>,
    pub price: Option<Price>,
    pub stock: Option<Stock>,
    pub category_id: Option<Option<CategoryId>>,
    pub sku: Option<Option<Sku>>,
}

impl ProductPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
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

impl NewProduct {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(body, PRODUCT_FIELDS);
        let name = fields.required("name", ProductName::parse);
        let description = fields.optional("description", Description::parse);
        let price = fields.required("price", Price::parse);
        let stock = fields.required("stock", Stock::parse);
        let category_id = fields.optional("category_id", CategoryId::parse);
        let sku = fields.optional("sku", Sku::parse);
        match (name, price, stock) {
            (Some(name), Some(price), Some(stock)) if fields.errors.is_empty() => Ok(Self {
                name,
                description: description.unwrap_or_default(),
                price,
                stock,
                category_id: category_id.flatten(),
                sku: sku.flatten(),
            }),
            _ => Err(fields.errors),
        }
    }
}

impl ProductPatch {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(body, PRODUCT_FIELDS);
        let patch = Self {
            name: fields.optional("name", ProductName::parse),
            description: fields.optional("description", Description::parse),
            price: fields.optional("price", Price::parse),
            stock: fields.optional("stock", Stock::parse),
            category_id: fields.optional("category_id", CategoryId::parse),
            sku: fields.optional("sku", Sku::parse),
        };
        if body.is_empty() {
            fields
                .errors
                .push(FieldError::new("", "at least one field is required"));
        }
        if fields.errors.is_empty() {
            Ok(patch)
        } else {
            Err(fields.errors)
        }
    }
}

// After `error_texts!`, which it uses.
pub mod stock;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn price(text: &str) -> Result<i64, PriceError> {
        Price::parse(&serde_json::from_str(text).unwrap()).map(Price::cents)
    }

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn prices_are_exact_in_cents() {
        assert_eq!(price("12.5"), Ok(1250));
        assert_eq!(price("0.1"), Ok(10));
        assert_eq!(price("19.99"), Ok(1999));
        assert_eq!(price("1.10"), Ok(110));
        assert_eq!(price("0"), Ok(0));
        assert_eq!(price("-0"), Ok(0));
        assert_eq!(price("1e2"), Ok(10000));
        assert_eq!(price("125e-1"), Ok(1250));
        assert_eq!(price("1000000000"), Ok(100_000_000_000));
        assert_eq!(price("1.000"), Ok(100));
    }

    #[test]
    fn bad_prices_are_refused_with_the_reason() {
        assert_eq!(price("1.005"), Err(PriceError::TooPrecise));
        assert_eq!(price("-1"), Err(PriceError::Negative));
        assert_eq!(price("1000000000.01"), Err(PriceError::TooLarge));
        assert_eq!(price("1e300"), Err(PriceError::TooLarge));
        assert_eq!(price("1e-300"), Err(PriceError::TooPrecise));
        assert_eq!(price("\"12\""), Err(PriceError::NotANumber));
        assert_eq!(
            price("99999999999999999999999999"),
            Err(PriceError::TooLarge)
        );
    }

    #[test]
    fn prices_render_without_trailing_zeros() {
        assert_eq!(Price::from_cents(1250).to_json().to_string(), "12.5");
        assert_eq!(Price::from_cents(1200).to_json().to_string(), "12");
        assert_eq!(Price::from_cents(1205).to_json().to_string(), "12.05");
        assert_eq!(Price::from_cents(5).to_json().to_string(), "0.05");
    }

    #[test]
    fn a_valid_product_parses_with_defaults() {
        let p = NewProduct::parse(&object(
            json!({"name": "  Mug ", "price": 12.5, "stock": 40}),
        ))
        .unwrap();
        assert_eq!(p.name.as_str(), "Mug");
        assert_eq!(p.description.as_str(), "");
        assert_eq!(p.category_id, None);
        assert_eq!(p.sku, None);
    }

    #[test]
    fn every_broken_field_is_reported_at_once() {
        let errors = NewProduct::parse(&object(json!({
            "name": " ", "price": 1.001, "stock": -1, "category_id": 0, "sku": "a b", "id": 3
        })))
        .unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        for field in ["id", "name", "price", "stock", "category_id", "sku"] {
            assert!(fields.contains(&field), "{field} missing from {fields:?}");
        }
    }

    #[test]
    fn missing_required_fields_are_each_named() {
        let errors = NewProduct::parse(&Map::new()).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["name", "price", "stock"]);
    }

    #[test]
    fn stock_must_be_an_integer_literal_in_range() {
        assert_eq!(Stock::parse(&json!(0)).map(Stock::get), Ok(0));
        assert_eq!(
            Stock::parse(&json!(1_000_000_000)).map(Stock::get),
            Ok(1_000_000_000)
        );
        assert_eq!(
            Stock::parse(&json!(1_000_000_001)),
            Err(StockError::OutOfRange)
        );
        assert_eq!(Stock::parse(&json!(2.5)), Err(StockError::NotAnInteger));
        assert_eq!(
            Stock::parse(&serde_json::from_str("1e3").unwrap()),
            Err(StockError::NotAnInteger)
        );
        assert_eq!(Stock::parse(&json!("5")), Err(StockError::NotAnInteger));
    }

    #[test]
    fn sku_rules() {
        assert!(Sku::parse(&json!("MUG-BLUE_350.v2")).unwrap().is_some());
        assert_eq!(Sku::parse(&json!(null)), Ok(None));
        assert_eq!(Sku::parse(&json!("")), Err(SkuError::BadLength));
        assert_eq!(Sku::parse(&json!("x".repeat(65))), Err(SkuError::BadLength));
        assert_eq!(Sku::parse(&json!("mug/1")), Err(SkuError::BadCharacter));
        assert_eq!(Sku::parse(&json!("müg")), Err(SkuError::BadCharacter));
    }

    #[test]
    fn names_count_characters_not_bytes() {
        assert!(ProductName::parse(&json!("é".repeat(200))).is_ok());
        assert_eq!(
            ProductName::parse(&json!("é".repeat(201))),
            Err(NameError::TooLong)
        );
    }

    #[test]
    fn a_patch_needs_at_least_one_field_and_may_clear_nullable_ones() {
        assert!(ProductPatch::parse(&Map::new()).is_err());
        let patch =
            ProductPatch::parse(&object(json!({"category_id": null, "sku": null}))).unwrap();
        assert_eq!(patch.category_id, Some(None));
        assert_eq!(patch.sku, Some(None));
        let patch = ProductPatch::parse(&object(json!({"stock": 25}))).unwrap();
        assert_eq!(patch.stock.map(Stock::get), Some(25));
    }
}
