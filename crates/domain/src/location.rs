//! Locations (warehouses, stores) and what requests say about them: a location to create or
//! change, a level's count, a transfer, and where a taking's units may come from (`Source`,
//! `Strategy`, `Split`, read from a body's `location_id`, `locations`, `strategy` and
//! `split`).

use serde_json::{Map, Value};

use crate::allocation::{Source, Split, Strategy};
use crate::fields::{error_texts, from_checked, ranged_integer, FieldError, Fields};
use crate::product::{ProductName, Stock};
use crate::stock::{ProductId, Quantity};

pub const MAX_LOCATION_ID_CHARS: usize = 64;
pub const MAX_PRIORITY: i64 = 1_000_000;
/// The priority of a location created without one (and of `default`).
pub const DEFAULT_PRIORITY: i64 = 100;
/// Locations a line may name in `locations`.
pub const MAX_LINE_LOCATIONS: usize = 50;
pub const MAX_TRANSFER_REASON_CHARS: usize = 200;
/// The reason of a transfer that names none.
pub const DEFAULT_TRANSFER_REASON: &str = "transfer";

error_texts!(LocationIdError {
    NotAString => "must be a string",
    BadLength => "must be 1 to {MAX_LOCATION_ID_CHARS} characters",
    BadCharacter => "may contain only A-Z a-z 0-9 - _ .",
});

error_texts!(PriorityError {
    NotAnInteger => "must be an integer",
    OutOfRange => "must be between 0 and {MAX_PRIORITY}",
});

error_texts!(FlagError {
    NotABoolean => "must be true or false",
});

error_texts!(LocationsError {
    NotAList => "must be a list of location ids",
    BadLength => "must name 1 to {MAX_LINE_LOCATIONS} locations",
    Repeated => "must not name a location twice",
    BadId => "must be location ids: 1 to {MAX_LOCATION_ID_CHARS} of A-Z a-z 0-9 - _ .",
});

error_texts!(StrategyError {
    Unknown => "must be \"priority\" or \"most_available\"",
});

error_texts!(SplitError {
    Unknown => "must be \"allowed\" or \"never\"",
});

error_texts!(TransferReasonError {
    NotAString => "must be a string",
    BadLength => "must be 1 to {MAX_TRANSFER_REASON_CHARS} characters",
    BadCharacter => "must not contain control characters",
});

/// A location's id: 1 to 64 of `A-Z a-z 0-9 - _ .`, case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocationId(String);

impl LocationId {
    pub fn new(text: String) -> Result<Self, LocationIdError> {
        if text.is_empty() || text.len() > MAX_LOCATION_ID_CHARS {
            return Err(LocationIdError::BadLength);
        }
        if !text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(LocationIdError::BadCharacter);
        }
        Ok(Self(text))
    }

    pub fn parse(value: &Value) -> Result<Self, LocationIdError> {
        Self::new(
            value
                .as_str()
                .ok_or(LocationIdError::NotAString)?
                .to_owned(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Which location is chosen first: 0 to 1,000,000, lower first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority(i64);

ranged_integer! {
    Priority: 0..=MAX_PRIORITY, PriorityError;
}

impl Default for Priority {
    fn default() -> Self {
        Self(DEFAULT_PRIORITY)
    }
}

/// Why units moved between locations: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferReason(String);

impl TransferReason {
    pub fn new(text: String) -> Result<Self, TransferReasonError> {
        if !(1..=MAX_TRANSFER_REASON_CHARS).contains(&text.chars().count()) {
            return Err(TransferReasonError::BadLength);
        }
        if text.chars().any(char::is_control) {
            return Err(TransferReasonError::BadCharacter);
        }
        Ok(Self(text))
    }

    pub fn parse(value: &Value) -> Result<Self, TransferReasonError> {
        Self::new(
            value
                .as_str()
                .ok_or(TransferReasonError::NotAString)?
                .to_owned(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TransferReason {
    fn default() -> Self {
        Self(DEFAULT_TRANSFER_REASON.to_owned())
    }
}

from_checked!(LocationId(String), Priority(i64), TransferReason(String));

fn flag(value: &Value) -> Result<bool, FlagError> {
    value.as_bool().ok_or(FlagError::NotABoolean)
}

/// `locations`: 1 to 50 location ids, no repeats, in the order given.
fn location_list(value: &Value) -> Result<Vec<String>, LocationsError> {
    let items = value.as_array().ok_or(LocationsError::NotAList)?;
    if !(1..=MAX_LINE_LOCATIONS).contains(&items.len()) {
        return Err(LocationsError::BadLength);
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let id = LocationId::parse(item).map_err(|_| LocationsError::BadId)?;
        if ids.iter().any(|seen| seen == id.as_str()) {
            return Err(LocationsError::Repeated);
        }
        ids.push(id.into_string());
    }
    Ok(ids)
}

/// A line's `location_id` or `locations` (never both): where its units may come from.
pub(crate) fn source(fields: &mut Fields<'_>) -> Source {
    let at = fields.optional("location_id", LocationId::parse);
    let among = fields.optional("locations", location_list);
    match (at, among) {
        (Some(_), Some(_)) => {
            fields.errors.push(FieldError::new(
                "locations",
                "must not be given with location_id: name one location or a list",
            ));
            Source::Any
        }
        (Some(at), None) => Source::At(at.into_string()),
        (None, Some(among)) => Source::Among(among),
        (None, None) => Source::Any,
    }
}

/// A body's `strategy` and `split`, each its default when absent.
pub(crate) fn rules(fields: &mut Fields<'_>) -> (Strategy, Split) {
    let strategy = fields.optional("strategy", |value| match value.as_str() {
        Some("priority") => Ok(Strategy::Priority),
        Some("most_available") => Ok(Strategy::MostAvailable),
        _ => Err(StrategyError::Unknown),
    });
    let split = fields.optional("split", |value| match value.as_str() {
        Some("allowed") => Ok(Split::Allowed),
        Some("never") => Ok(Split::Never),
        _ => Err(SplitError::Unknown),
    });
    (strategy.unwrap_or_default(), split.unwrap_or_default())
}

/// `POST /locations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLocation {
    pub id: LocationId,
    pub name: ProductName,
    pub priority: Priority,
    pub active: bool,
}

impl NewLocation {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(body, &["id", "name", "priority", "active"]);
        let id = fields.required("id", LocationId::parse);
        let name = fields.required("name", ProductName::parse);
        let priority = fields.optional("priority", Priority::parse);
        let active = fields.optional("active", flag);
        match (id, name) {
            (Some(id), Some(name)) if fields.errors.is_empty() => Ok(Self {
                id,
                name,
                priority: priority.unwrap_or_default(),
                active: active.unwrap_or(true),
            }),
            _ => Err(fields.errors),
        }
    }
}

/// `PATCH /locations/{id}`: at least one of `name`, `priority`, `active`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LocationPatch {
    pub name: Option<ProductName>,
    pub priority: Option<Priority>,
    pub active: Option<bool>,
}

impl LocationPatch {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(body, &["name", "priority", "active"]);
        let patch = Self {
            name: fields.optional("name", ProductName::parse),
            priority: fields.optional("priority", Priority::parse),
            active: fields.optional("active", flag),
        };
        if body.is_empty() {
            fields
                .errors
                .push(FieldError::new("", crate::product::EMPTY_PATCH));
        }
        if fields.errors.is_empty() {
            Ok(patch)
        } else {
            Err(fields.errors)
        }
    }
}

/// `PUT /product/{id}/stock/{location_id}`: a count of one level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelCount {
    pub stock: Stock,
}

impl LevelCount {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(body, &["stock"]);
        match fields.required("stock", Stock::parse) {
            Some(stock) if fields.errors.is_empty() => Ok(Self { stock }),
            _ => Err(fields.errors),
        }
    }
}

/// `POST /transfers`: units of a product moved from one location to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransfer {
    pub product_id: ProductId,
    pub from: LocationId,
    pub to: LocationId,
    pub quantity: Quantity,
    pub reason: TransferReason,
}

impl NewTransfer {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(body, &["product_id", "from", "to", "quantity", "reason"]);
        let product_id = fields.required("product_id", ProductId::parse);
        let from = fields.required("from", LocationId::parse);
        let to = fields.required("to", LocationId::parse);
        let quantity = fields.required("quantity", Quantity::parse);
        let reason = fields.optional("reason", TransferReason::parse);
        if let (Some(from), Some(to)) = (&from, &to) {
            if from == to {
                fields.errors.push(FieldError::new(
                    "to",
                    "must not be the same location as from",
                ));
            }
        }
        match (product_id, from, to, quantity) {
            (Some(product_id), Some(from), Some(to), Some(quantity))
                if fields.errors.is_empty() =>
            {
                Ok(Self {
                    product_id,
                    from,
                    to,
                    quantity,
                    reason: reason.unwrap_or_default(),
                })
            }
            _ => Err(fields.errors),
        }
    }
}

/// The guard's records of locations and of where units come from (`wit/guard.wit`) and these
/// types, converted both ways, here and only here (see `product_records!`).
#[doc(hidden)]
#[macro_export]
macro_rules! location_records {
    ($wit:ident) => {
        impl From<$crate::allocation::Source> for $wit::Source {
            fn from(source: $crate::allocation::Source) -> Self {
                match source {
                    $crate::allocation::Source::Any => Self::Any,
                    $crate::allocation::Source::At(at) => Self::At(at),
                    $crate::allocation::Source::Among(among) => Self::Among(among),
                }
            }
        }

        impl From<$wit::Source> for $crate::allocation::Source {
            fn from(source: $wit::Source) -> Self {
                match source {
                    $wit::Source::Any => Self::Any,
                    $wit::Source::At(at) => Self::At(at),
                    $wit::Source::Among(among) => Self::Among(among),
                }
            }
        }

        impl From<$crate::allocation::Strategy> for $wit::Strategy {
            fn from(strategy: $crate::allocation::Strategy) -> Self {
                match strategy {
                    $crate::allocation::Strategy::Priority => Self::Priority,
                    $crate::allocation::Strategy::MostAvailable => Self::MostAvailable,
                }
            }
        }

        impl From<$wit::Strategy> for $crate::allocation::Strategy {
            fn from(strategy: $wit::Strategy) -> Self {
                match strategy {
                    $wit::Strategy::Priority => Self::Priority,
                    $wit::Strategy::MostAvailable => Self::MostAvailable,
                }
            }
        }

        impl From<$crate::allocation::Split> for $wit::Split {
            fn from(split: $crate::allocation::Split) -> Self {
                match split {
                    $crate::allocation::Split::Allowed => Self::Allowed,
                    $crate::allocation::Split::Never => Self::Never,
                }
            }
        }

        impl From<$wit::Split> for $crate::allocation::Split {
            fn from(split: $wit::Split) -> Self {
                match split {
                    $wit::Split::Allowed => Self::Allowed,
                    $wit::Split::Never => Self::Never,
                }
            }
        }

        impl From<$crate::location::NewLocation> for $wit::NewLocation {
            fn from(l: $crate::location::NewLocation) -> Self {
                Self {
                    id: l.id.into_string(),
                    name: l.name.as_str().to_owned(),
                    priority: l.priority.get(),
                    active: l.active,
                }
            }
        }

        impl From<$wit::NewLocation> for $crate::location::NewLocation {
            fn from(l: $wit::NewLocation) -> Self {
                Self {
                    id: $crate::location::LocationId::from_checked(l.id),
                    name: $crate::ProductName::from_checked(l.name),
                    priority: $crate::location::Priority::from_checked(l.priority),
                    active: l.active,
                }
            }
        }

        impl From<$crate::location::LocationPatch> for $wit::LocationPatch {
            fn from(p: $crate::location::LocationPatch) -> Self {
                Self {
                    name: p.name.map(|n| n.as_str().to_owned()),
                    priority: p.priority.map($crate::location::Priority::get),
                    active: p.active,
                }
            }
        }

        impl From<$wit::LocationPatch> for $crate::location::LocationPatch {
            fn from(p: $wit::LocationPatch) -> Self {
                Self {
                    name: p.name.map($crate::ProductName::from_checked),
                    priority: p.priority.map($crate::location::Priority::from_checked),
                    active: p.active,
                }
            }
        }

        impl From<$crate::location::LevelCount> for $wit::LevelCount {
            fn from(c: $crate::location::LevelCount) -> Self {
                Self {
                    stock: c.stock.get(),
                }
            }
        }

        impl From<$wit::LevelCount> for $crate::location::LevelCount {
            fn from(c: $wit::LevelCount) -> Self {
                Self {
                    stock: $crate::Stock::from_checked(c.stock),
                }
            }
        }

        impl From<$crate::location::NewTransfer> for $wit::NewTransfer {
            fn from(t: $crate::location::NewTransfer) -> Self {
                Self {
                    product_id: t.product_id.get(),
                    from_location: t.from.into_string(),
                    to_location: t.to.into_string(),
                    quantity: t.quantity.get(),
                    reason: t.reason.as_str().to_owned(),
                }
            }
        }

        impl From<$wit::NewTransfer> for $crate::location::NewTransfer {
            fn from(t: $wit::NewTransfer) -> Self {
                Self {
                    product_id: $crate::stock::ProductId::from_checked(t.product_id),
                    from: $crate::location::LocationId::from_checked(t.from_location),
                    to: $crate::location::LocationId::from_checked(t.to_location),
                    quantity: $crate::stock::Quantity::from_checked(t.quantity),
                    reason: $crate::location::TransferReason::from_checked(t.reason),
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
    fn a_location_needs_an_id_and_a_name_and_defaults_the_rest() {
        let l = NewLocation::parse(&object(json!({"id": "berlin-1", "name": " Berlin "}))).unwrap();
        assert_eq!(
            (l.id.as_str(), l.name.as_str(), l.priority.get(), l.active),
            ("berlin-1", "Berlin", 100, true)
        );
        let errors = NewLocation::parse(&object(
            json!({"id": "a b", "name": "", "priority": 1_000_001, "active": "yes"}),
        ))
        .unwrap_err();
        assert_eq!(fields(errors), ["id", "name", "priority", "active"]);
        assert!(LocationId::new("x".repeat(65)).is_err());
        assert!(LocationId::new("Berlin.Mitte_2-b".into()).is_ok());
    }

    #[test]
    fn a_line_names_one_location_or_a_list_never_both() {
        let body = object(json!({"location_id": "a", "locations": ["b"]}));
        let mut f = Fields::new(&body, &["location_id", "locations"]);
        source(&mut f);
        assert_eq!(fields(f.errors), ["locations"]);
        for bad in [json!([]), json!(["a", "a"]), json!(["a b"]), json!("a")] {
            assert!(location_list(&bad).is_err(), "{bad}");
        }
        let many: Vec<String> = (0..51).map(|i| format!("l{i}")).collect();
        assert!(location_list(&json!(many)).is_err());
        let body = object(json!({"locations": ["b", "a"]}));
        let mut f = Fields::new(&body, &["locations"]);
        assert_eq!(source(&mut f), Source::Among(vec!["b".into(), "a".into()]));
    }

    #[test]
    fn a_transfer_moves_between_two_locations() {
        let t = NewTransfer::parse(&object(
            json!({"product_id": 7, "from": "a", "to": "b", "quantity": 5}),
        ))
        .unwrap();
        assert_eq!(t.reason.as_str(), "transfer");
        let errors = NewTransfer::parse(&object(
            json!({"product_id": 7, "from": "a", "to": "a", "quantity": 0}),
        ))
        .unwrap_err();
        assert_eq!(fields(errors), ["quantity", "to"]);
    }

    #[test]
    fn strategy_and_split_are_named_words() {
        let body = object(json!({"strategy": "most_available", "split": "never"}));
        let mut f = Fields::new(&body, &["strategy", "split"]);
        assert_eq!(rules(&mut f), (Strategy::MostAvailable, Split::Never));
        let body = object(json!({"strategy": "nearest", "split": false}));
        let mut f = Fields::new(&body, &["strategy", "split"]);
        rules(&mut f);
        assert_eq!(fields(f.errors), ["strategy", "split"]);
    }
}
