//! A product's fields. Each type has one checked constructor (`new`); `parse` reads the JSON
//! value and calls it, so a value built from a JSON body and one rebuilt from the guard's
//! record obey the same rules, written once.

use serde_json::{Map, Value};

use crate::fields::{error_texts, from_checked, integer, ranged_integer, FieldError, Fields};
use crate::price::Price;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
pub const MAX_STOCK: i64 = 1_000_000_000;
pub const MAX_SKU_CHARS: usize = 64;

error_texts!(NameError {
    NotAString => "must be a string",
    Empty => "must not be empty or only whitespace",
    TooLong => "must be at most {MAX_NAME_CHARS} characters",
});

error_texts!(DescriptionError {
    NotAString => "must be a string",
    TooLong => "must be at most {MAX_DESCRIPTION_CHARS} characters",
});

error_texts!(StockError {
    NotAnInteger => "must be an integer",
    OutOfRange => "must be between 0 and {MAX_STOCK}",
});

error_texts!(CategoryIdError {
    NotAnInteger => "must be an integer or null",
    OutOfRange => "must be at least 1",
});

error_texts!(SkuError {
    NotAString => "must be a string or null",
    BadLength => "must be 1 to {MAX_SKU_CHARS} characters",
    BadCharacter => "may contain only A-Z a-z 0-9 - _ .",
});

/// A product name: 1 to 200 characters as sent, not all whitespace (Unicode `White_Space`,
/// what `str::trim` removes); kept trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub fn new(text: &str) -> Result<Self, NameError> {
        if text.chars().count() > MAX_NAME_CHARS {
            return Err(NameError::TooLong);
        }
        match text.trim() {
            "" => Err(NameError::Empty),
            trimmed => Ok(Self(trimmed.to_owned())),
        }
    }

    pub fn parse(value: &Value) -> Result<Self, NameError> {
        Self::new(value.as_str().ok_or(NameError::NotAString)?)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A description of at most 2000 characters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub fn new(text: String) -> Result<Self, DescriptionError> {
        if text.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(DescriptionError::TooLong);
        }
        Ok(Self(text))
    }

    pub fn parse(value: &Value) -> Result<Self, DescriptionError> {
        Self::new(
            value
                .as_str()
                .ok_or(DescriptionError::NotAString)?
                .to_owned(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A stock level: 0 to 1,000,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock(i64);

ranged_integer! {
    Stock: 0..=MAX_STOCK, StockError;
}

/// A category id: an integer of at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryId(i64);

impl CategoryId {
    pub fn new(n: i64) -> Result<Self, CategoryIdError> {
        if n >= 1 {
            Ok(Self(n))
        } else {
            Err(CategoryIdError::OutOfRange)
        }
    }

    /// `null` is no category.
    pub fn parse(value: &Value) -> Result<Option<Self>, CategoryIdError> {
        if value.is_null() {
            return Ok(None);
        }
        let n = integer(value)
            .ok_or(CategoryIdError::NotAnInteger)?
            .ok_or(CategoryIdError::OutOfRange)?;
        Self::new(n).map(Some)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// A stock-keeping unit: 1 to 64 of `A-Z a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    pub fn new(text: String) -> Result<Self, SkuError> {
        if text.is_empty() || text.chars().count() > MAX_SKU_CHARS {
            return Err(SkuError::BadLength);
        }
        if !text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(SkuError::BadCharacter);
        }
        Ok(Self(text))
    }

    /// `null` is no sku.
    pub fn parse(value: &Value) -> Result<Option<Self>, SkuError> {
        match value {
            Value::Null => Ok(None),
            Value::String(text) => Self::new(text.clone()).map(Some),
            _ => Err(SkuError::NotAString),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

from_checked!(
    ProductName(String),
    Description(String),
    Stock(i64),
    CategoryId(i64),
    Sku(String),
);

const PRODUCT_FIELDS: &[&str] = &[
    "name",
    "description",
    "price",
    "stock",
    "category_id",
    "sku",
];

/// A product to create, with its one level at `location_id` (`default` when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub name: ProductName,
    pub description: Description,
    pub price: Price,
    pub stock: Stock,
    pub category_id: Option<CategoryId>,
    pub sku: Option<Sku>,
    pub location_id: Option<crate::location::LocationId>,
}

impl NewProduct {
    /// Every broken field at once, unknown members included.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut known = PRODUCT_FIELDS.to_vec();
        known.push("location_id");
        let mut fields = Fields::new(body, &known);
        let name = fields.required("name", ProductName::parse);
        let description = fields.optional("description", Description::parse);
        let price = fields.required("price", Price::parse);
        let stock = fields.required("stock", Stock::parse);
        let category_id = fields.optional("category_id", CategoryId::parse);
        let sku = fields.optional("sku", Sku::parse);
        let location_id = fields.optional("location_id", crate::location::LocationId::parse);
        match (name, price, stock) {
            (Some(name), Some(price), Some(stock)) if fields.errors.is_empty() => Ok(Self {
                name,
                description: description.unwrap_or_default(),
                price,
                stock,
                category_id: category_id.flatten(),
                sku: sku.flatten(),
                location_id,
            }),
            _ => Err(fields.errors),
        }
    }
}

/// The fields of a product to change; `None` leaves a field as it is, and for the nullable
/// ones `Some(None)` clears it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProductPatch {
    pub name: Option<ProductName>,
    pub description: Option<Description>,
    pub price: Option<Price>,
    pub stock: Option<Stock>,
    pub category_id: Option<Option<CategoryId>>,
    pub sku: Option<Option<Sku>>,
}

/// The message of a patch that changes nothing.
pub const EMPTY_PATCH: &str = "at least one field is required";

impl ProductPatch {
    /// At least one field; every broken field at once.
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
            fields.errors.push(FieldError::new("", EMPTY_PATCH));
        }
        if fields.errors.is_empty() {
            Ok(patch)
        } else {
            Err(fields.errors)
        }
    }

    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Whether it sets any field besides the stock.
    pub fn changes_more_than_stock(&self) -> bool {
        !Self {
            stock: None,
            ..self.clone()
        }
        .is_empty()
    }
}

/// The guard's records of products (`wit/guard.wit`: `new-product`, `product-patch`) and
/// these types, converted both ways, here and only here. `$wit` names the module of the
/// generated bindings: the guard's exports, or the handlers' imports (see `guard_records!`).
#[doc(hidden)]
#[macro_export]
macro_rules! product_records {
    ($wit:ident) => {
        impl From<$crate::NewProduct> for $wit::NewProduct {
            fn from(p: $crate::NewProduct) -> Self {
                Self {
                    name: p.name.as_str().to_owned(),
                    description: p.description.as_str().to_owned(),
                    price_cents: p.price.cents(),
                    stock: p.stock.get(),
                    category_id: p.category_id.map($crate::CategoryId::get),
                    sku: p.sku.map(|s| s.as_str().to_owned()),
                    location_id: p.location_id.map($crate::location::LocationId::into_string),
                }
            }
        }

        impl From<$wit::NewProduct> for $crate::NewProduct {
            fn from(p: $wit::NewProduct) -> Self {
                Self {
                    name: $crate::ProductName::from_checked(p.name),
                    description: $crate::Description::from_checked(p.description),
                    price: $crate::Price::from_checked(p.price_cents),
                    stock: $crate::Stock::from_checked(p.stock),
                    category_id: p.category_id.map($crate::CategoryId::from_checked),
                    sku: p.sku.map($crate::Sku::from_checked),
                    location_id: p
                        .location_id
                        .map($crate::location::LocationId::from_checked),
                }
            }
        }

        impl From<$crate::ProductPatch> for $wit::ProductPatch {
            fn from(p: $crate::ProductPatch) -> Self {
                Self {
                    name: p.name.map(|n| n.as_str().to_owned()),
                    description: p.description.map(|d| d.as_str().to_owned()),
                    price_cents: p.price.map($crate::Price::cents),
                    stock: p.stock.map($crate::Stock::get),
                    category_id: p.category_id.map(|c| c.map($crate::CategoryId::get)),
                    sku: p.sku.map(|s| s.map(|s| s.as_str().to_owned())),
                }
            }
        }

        impl From<$wit::ProductPatch> for $crate::ProductPatch {
            fn from(p: $wit::ProductPatch) -> Self {
                Self {
                    name: p.name.map($crate::ProductName::from_checked),
                    description: p.description.map($crate::Description::from_checked),
                    price: p.price_cents.map($crate::Price::from_checked),
                    stock: p.stock.map($crate::Stock::from_checked),
                    category_id: p
                        .category_id
                        .map(|c| c.map($crate::CategoryId::from_checked)),
                    sku: p.sku.map(|s| s.map($crate::Sku::from_checked)),
                }
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
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
            Stock::parse(&serde_json::from_str("1e3").unwrap()).map(Stock::get),
            Ok(1000)
        );
        assert_eq!(Stock::parse(&json!(8176.0)).map(Stock::get), Ok(8176));
        assert_eq!(Stock::parse(&json!("5")), Err(StockError::NotAnInteger));
        assert_eq!(Stock::new(-1), Err(StockError::OutOfRange));
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
    fn names_are_counted_as_sent_and_kept_trimmed() {
        let name = ProductName::parse(&json!(" Blue mug\n")).unwrap();
        assert_eq!(name.as_str(), "Blue mug");
        // The schema's maxLength counts what was sent, padding included.
        let padded = format!("  {}  ", "x".repeat(197));
        assert_eq!(ProductName::parse(&json!(padded)), Err(NameError::TooLong));
        for blank in ["", " ", "\n\t", "\u{3000}\u{85}"] {
            assert_eq!(
                ProductName::parse(&json!(blank)),
                Err(NameError::Empty),
                "{blank:?}"
            );
        }
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
