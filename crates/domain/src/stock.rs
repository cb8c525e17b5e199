//! Stock requests from the order service: deduct, batch deduct, restock.

use std::fmt;

use serde_json::{Map, Value};

use crate::allocation::{Source, Split, Strategy};
use crate::fields::{error_texts, from_checked, ranged_integer, FieldError, Fields};
use crate::location::{rules, source, LocationId};

pub use crate::limits::{MAX_BATCH_LINES, MAX_ORDER_ID_CHARS, MAX_QUANTITY, MAX_REASON_CHARS};
/// The reason a restock is recorded with when the client gives none.
pub const DEFAULT_RESTOCK_REASON: &str = "restock";

error_texts!(QuantityError {
    NotAnInteger => "must be an integer",
    OutOfRange => "must be between 1 and {MAX_QUANTITY}",
});

error_texts!(OrderIdError {
    NotAString => "must be a string",
    BadLength => "must be 1 to {MAX_ORDER_ID_CHARS} characters",
    BadCharacter => "must not contain control characters",
});

error_texts!(ReasonError {
    NotAString => "must be a string",
    BadLength => "must be 1 to {MAX_REASON_CHARS} characters",
    BadCharacter => "may contain only a-z 0-9 - _",
});

error_texts!(ProductIdError {
    NotAnInteger => "must be an integer",
    OutOfRange => "must be at least 1",
});

error_texts!(LinesError {
    NotAList => "must be a list of {{\"product_id\", \"quantity\"}} objects",
    BadLength => "must have 1 to {MAX_BATCH_LINES} lines",
    NotAnObject => "must be an object with product_id and quantity",
});

/// How many units to deduct or restock: 1 to 1,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

ranged_integer! {
    Quantity: 1..=MAX_QUANTITY, QuantityError;
}

/// The order a stock change belongs to: 1 to 128 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderId(String);

impl OrderId {
    pub fn new(text: String) -> Result<Self, OrderIdError> {
        if !(1..=MAX_ORDER_ID_CHARS).contains(&text.chars().count()) {
            return Err(OrderIdError::BadLength);
        }
        if text.chars().any(char::is_control) {
            return Err(OrderIdError::BadCharacter);
        }
        Ok(Self(text))
    }

    pub fn parse(value: &Value) -> Result<Self, OrderIdError> {
        Self::new(value.as_str().ok_or(OrderIdError::NotAString)?.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why stock came back, for the ledger: `order-cancelled`, `returned`, `restock`...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestockReason(String);

impl RestockReason {
    pub fn new(text: String) -> Result<Self, ReasonError> {
        if !(1..=MAX_REASON_CHARS).contains(&text.len()) {
            return Err(ReasonError::BadLength);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        {
            return Err(ReasonError::BadCharacter);
        }
        Ok(Self(text))
    }

    pub fn parse(value: &Value) -> Result<Self, ReasonError> {
        Self::new(value.as_str().ok_or(ReasonError::NotAString)?.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RestockReason {
    fn default() -> Self {
        Self(DEFAULT_RESTOCK_REASON.to_owned())
    }
}

/// A product id in a request body: an integer of at least 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProductId(i64);

ranged_integer! {
    ProductId: 1..=i64::MAX, ProductIdError;
}

from_checked!(
    Quantity(i64),
    OrderId(String),
    RestockReason(String),
    ProductId(i64),
);

/// `POST /product/{id}/deduct`: its one line, where from, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deduct {
    pub quantity: Quantity,
    pub order_id: OrderId,
    pub source: Source,
    pub strategy: Strategy,
    pub split: Split,
}

impl Deduct {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(
            body,
            &[
                "quantity",
                "order_id",
                "location_id",
                "locations",
                "strategy",
                "split",
            ],
        );
        let quantity = fields.required("quantity", Quantity::parse);
        let order_id = fields.required("order_id", OrderId::parse);
        let source = source(&mut fields);
        let (strategy, split) = rules(&mut fields);
        match (quantity, order_id) {
            (Some(quantity), Some(order_id)) if fields.errors.is_empty() => Ok(Self {
                quantity,
                order_id,
                source,
                strategy,
                split,
            }),
            _ => Err(fields.errors),
        }
    }
}

/// `POST /product/{id}/restock`: to one location, `default` when it names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restock {
    pub quantity: Quantity,
    pub order_id: Option<OrderId>,
    pub reason: RestockReason,
    pub location_id: Option<LocationId>,
}

impl Restock {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(body, &["quantity", "order_id", "reason", "location_id"]);
        let quantity = fields.required("quantity", Quantity::parse);
        let order_id = fields.optional("order_id", OrderId::parse);
        let reason = fields.optional("reason", RestockReason::parse);
        let location_id = fields.optional("location_id", LocationId::parse);
        match quantity {
            Some(quantity) if fields.errors.is_empty() => Ok(Self {
                quantity,
                order_id,
                reason: reason.unwrap_or_default(),
                location_id,
            }),
            _ => Err(fields.errors),
        }
    }
}

/// One line of a batch deduct or a hold (or of a partial commit, which names no location).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeductLine {
    pub product_id: ProductId,
    pub quantity: Quantity,
    pub source: Source,
}

/// `POST /stock/deduct`: every line or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchDeduct {
    pub order_id: OrderId,
    /// 1 to 100 lines, as sent, served in this order.
    pub lines: Vec<DeductLine>,
    pub strategy: Strategy,
    pub split: Split,
}

/// What a batch takes from one product: every line naming it, added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductTotal {
    pub product_id: ProductId,
    /// At most `MAX_BATCH_LINES * MAX_QUANTITY`.
    pub quantity: i64,
}

/// A line's field name in errors: `lines[2].quantity`.
fn line_field(index: usize, field: &str) -> String {
    format!("lines[{index}].{field}")
}

impl BatchDeduct {
    /// One total per product, in the order the products are first named.
    pub fn totals(&self) -> Vec<ProductTotal> {
        totals(&self.lines)
    }

    /// Every broken field at once; a broken line is named `lines[<index>].<field>`.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(body, &["order_id", "lines", "strategy", "split"]);
        let order_id = fields.required("order_id", OrderId::parse);
        let lines = lines(&mut fields, true, true);
        let (strategy, split) = rules(&mut fields);
        match (order_id, lines) {
            (Some(order_id), Some(lines)) if fields.errors.is_empty() => Ok(Self {
                order_id,
                lines,
                strategy,
                split,
            }),
            _ => Err(fields.errors),
        }
    }
}

/// One total per product of `lines`, in the order the products are first named.
pub fn totals(lines: &[DeductLine]) -> Vec<ProductTotal> {
    let mut totals: Vec<ProductTotal> = Vec::with_capacity(lines.len());
    for line in lines {
        match totals.iter_mut().find(|t| t.product_id == line.product_id) {
            Some(total) => total.quantity += line.quantity.get(),
            None => totals.push(ProductTotal {
                product_id: line.product_id,
                quantity: line.quantity.get(),
            }),
        }
    }
    totals
}

/// The `lines` member: 1 to 100 `{"product_id", "quantity"}` objects (with `location_id` or
/// `locations` where `sourced`), each broken one reported as `lines[<index>].<field>`.
/// `None` if absent (an error if `required`) or broken.
pub(crate) fn lines(
    fields: &mut Fields<'_>,
    required: bool,
    sourced: bool,
) -> Option<Vec<DeductLine>> {
    let list = |value: &Value| match value.as_array() {
        None => Err(LinesError::NotAList),
        Some(lines) if !(1..=MAX_BATCH_LINES).contains(&lines.len()) => Err(LinesError::BadLength),
        Some(lines) => Ok(lines.clone()),
    };
    let raw_lines = if required {
        fields.required("lines", list)
    } else {
        fields.optional("lines", list)
    }?;
    let before = fields.errors.len();
    let mut lines = Vec::new();
    for (index, raw) in raw_lines.iter().enumerate() {
        let Some(line) = raw.as_object() else {
            let error = FieldError::new(format!("lines[{index}]"), LinesError::NotAnObject);
            fields.errors.push(error);
            continue;
        };
        let known: &[&str] = if sourced {
            &["product_id", "quantity", "location_id", "locations"]
        } else {
            &["product_id", "quantity"]
        };
        let mut line_fields = Fields::new(line, known);
        let product_id = line_fields.required("product_id", ProductId::parse);
        let quantity = line_fields.required("quantity", Quantity::parse);
        let source = source(&mut line_fields);
        fields.errors.extend(
            line_fields
                .errors
                .into_iter()
                .map(|e| FieldError::new(line_field(index, &e.field), e.message)),
        );
        if let (Some(product_id), Some(quantity)) = (product_id, quantity) {
            lines.push(DeductLine {
                product_id,
                quantity,
                source,
            });
        }
    }
    (fields.errors.len() == before).then_some(lines)
}

impl fmt::Display for DeductLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} x{}", self.product_id.get(), self.quantity.get())
    }
}

/// One line of a taking that cannot be served: what was asked, what there is, and where.
pub use crate::allocation::Short as Shortfall;

/// The guard's records of stock requests (`wit/guard.wit`: `deduct`, `restock`,
/// `batch-deduct`) and these types, converted both ways, here and only here (see
/// `product_records!`).
#[doc(hidden)]
#[macro_export]
macro_rules! stock_records {
    ($wit:ident) => {
        impl From<$crate::stock::Deduct> for $wit::Deduct {
            fn from(d: $crate::stock::Deduct) -> Self {
                Self {
                    quantity: d.quantity.get(),
                    order_id: d.order_id.as_str().to_owned(),
                    source: d.source.into(),
                    strategy: d.strategy.into(),
                    split: d.split.into(),
                }
            }
        }

        impl From<$wit::Deduct> for $crate::stock::Deduct {
            fn from(d: $wit::Deduct) -> Self {
                Self {
                    quantity: $crate::stock::Quantity::from_checked(d.quantity),
                    order_id: $crate::stock::OrderId::from_checked(d.order_id),
                    source: d.source.into(),
                    strategy: d.strategy.into(),
                    split: d.split.into(),
                }
            }
        }

        impl From<$crate::stock::Restock> for $wit::Restock {
            fn from(r: $crate::stock::Restock) -> Self {
                Self {
                    quantity: r.quantity.get(),
                    order_id: r.order_id.map(|o| o.as_str().to_owned()),
                    reason: r.reason.as_str().to_owned(),
                    location_id: r.location_id.map($crate::location::LocationId::into_string),
                }
            }
        }

        impl From<$wit::Restock> for $crate::stock::Restock {
            fn from(r: $wit::Restock) -> Self {
                Self {
                    quantity: $crate::stock::Quantity::from_checked(r.quantity),
                    order_id: r.order_id.map($crate::stock::OrderId::from_checked),
                    reason: $crate::stock::RestockReason::from_checked(r.reason),
                    location_id: r
                        .location_id
                        .map($crate::location::LocationId::from_checked),
                }
            }
        }

        impl From<$crate::stock::DeductLine> for $wit::DeductLine {
            fn from(line: $crate::stock::DeductLine) -> Self {
                Self {
                    product_id: line.product_id.get(),
                    quantity: line.quantity.get(),
                    source: line.source.into(),
                }
            }
        }

        impl From<$wit::DeductLine> for $crate::stock::DeductLine {
            fn from(line: $wit::DeductLine) -> Self {
                Self {
                    product_id: $crate::stock::ProductId::from_checked(line.product_id),
                    quantity: $crate::stock::Quantity::from_checked(line.quantity),
                    source: line.source.into(),
                }
            }
        }

        impl From<$crate::stock::BatchDeduct> for $wit::BatchDeduct {
            fn from(b: $crate::stock::BatchDeduct) -> Self {
                Self {
                    order_id: b.order_id.as_str().to_owned(),
                    lines: b.lines.into_iter().map(Into::into).collect(),
                    strategy: b.strategy.into(),
                    split: b.split.into(),
                }
            }
        }

        impl From<$wit::BatchDeduct> for $crate::stock::BatchDeduct {
            fn from(b: $wit::BatchDeduct) -> Self {
                Self {
                    order_id: $crate::stock::OrderId::from_checked(b.order_id),
                    lines: b.lines.into_iter().map(Into::into).collect(),
                    strategy: b.strategy.into(),
                    split: b.split.into(),
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

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn a_deduct_needs_a_quantity_in_range_and_an_order_id() {
        let d = Deduct::parse(&object(json!({"quantity": 2, "order_id": "ord-1"}))).unwrap();
        assert_eq!((d.quantity.get(), d.order_id.as_str()), (2, "ord-1"));
        let errors = Deduct::parse(&object(json!({"quantity": 0, "extra": 1}))).unwrap_err();
        assert_eq!(fields(errors), vec!["extra", "quantity", "order_id"]);
        for bad in [json!(1.5), json!("2"), json!(1_000_001), json!(-1)] {
            assert!(Quantity::parse(&bad).is_err(), "{bad}");
        }
        assert!(OrderId::parse(&json!("a\nb")).is_err());
        assert!(OrderId::parse(&json!("x".repeat(129))).is_err());
    }

    #[test]
    fn a_restock_defaults_its_reason() {
        let r = Restock::parse(&object(json!({"quantity": 3}))).unwrap();
        assert_eq!(r.reason.as_str(), "restock");
        assert_eq!(r.order_id, None);
        let errors = Restock::parse(&object(json!({"quantity": 3, "reason": "Order Cancelled"})))
            .unwrap_err();
        assert_eq!(fields(errors), vec!["reason"]);
    }

    #[test]
    fn a_batch_reports_every_broken_line_by_index() {
        let errors = BatchDeduct::parse(&object(json!({
            "order_id": "o",
            "lines": [
                {"product_id": 1, "quantity": 1},
                {"product_id": 0, "quantity": 0},
                {"product_id": 1, "quantity": 2, "x": true},
                "nope"
            ]
        })))
        .unwrap_err();
        assert_eq!(
            fields(errors),
            vec![
                "lines[1].product_id",
                "lines[1].quantity",
                "lines[2].x",
                "lines[3]"
            ]
        );
    }

    #[test]
    fn lines_naming_one_product_add_up_in_first_named_order() {
        let batch = BatchDeduct::parse(&object(json!({
            "order_id": "o",
            "lines": [
                {"product_id": 7, "quantity": 2},
                {"product_id": 3, "quantity": 1},
                {"product_id": 7, "quantity": 1_000_000},
            ]
        })))
        .unwrap();
        let totals: Vec<(i64, i64)> = batch
            .totals()
            .iter()
            .map(|t| (t.product_id.get(), t.quantity))
            .collect();
        assert_eq!(totals, [(7, 1_000_002), (3, 1)]);
    }

    #[test]
    fn a_batch_has_1_to_100_lines() {
        let line = json!({"product_id": 1, "quantity": 1});
        assert!(BatchDeduct::parse(&object(json!({"order_id": "o", "lines": []}))).is_err());
        let many: Vec<Value> = (1..=101)
            .map(|i| json!({"product_id": i, "quantity": 1}))
            .collect();
        assert!(BatchDeduct::parse(&object(json!({"order_id": "o", "lines": many}))).is_err());
        let ok = BatchDeduct::parse(&object(json!({"order_id": "o", "lines": [line]}))).unwrap();
        assert_eq!(ok.lines.len(), 1);
    }
}
