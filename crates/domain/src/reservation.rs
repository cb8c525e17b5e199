//! Checkout holds (`/reservations`): what the order service asks for when it holds stock,
//! commits part of a hold, or extends one.

use serde_json::{Map, Value};

use crate::allocation::{Split, Strategy};
use crate::fields::{error_texts, from_checked, ranged_integer, FieldError, Fields};
use crate::location::rules;
use crate::stock::{lines, totals, DeductLine, OrderId, ProductTotal};

pub const MAX_TTL_SECONDS: i64 = 86_400;
/// How long a hold lasts when the order service names no `ttl_seconds`.
pub const DEFAULT_TTL_SECONDS: i64 = 900;

error_texts!(TtlError {
    NotAnInteger => "must be an integer",
    OutOfRange => "must be between 1 and {MAX_TTL_SECONDS}",
});

/// How long a hold lasts from now: 1 to 86,400 seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlSeconds(i64);

from_checked!(TtlSeconds(i64));

ranged_integer! {
    TtlSeconds: 1..=MAX_TTL_SECONDS, TtlError;
}

impl Default for TtlSeconds {
    fn default() -> Self {
        Self(DEFAULT_TTL_SECONDS)
    }
}

/// `POST /reservations`: every line held or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReservation {
    pub order_id: OrderId,
    /// 1 to 100 lines, as sent, served in this order; lines naming the same product add
    /// up, their allocations merged per location.
    pub lines: Vec<DeductLine>,
    pub ttl: TtlSeconds,
    pub strategy: Strategy,
    pub split: Split,
}

impl NewReservation {
    /// Every broken field at once; a broken line is named `lines[<index>].<field>`.
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(
            body,
            &["order_id", "lines", "ttl_seconds", "strategy", "split"],
        );
        let order_id = fields.required("order_id", OrderId::parse);
        let lines = lines(&mut fields, true, true);
        let ttl = fields.optional("ttl_seconds", TtlSeconds::parse);
        let (strategy, split) = rules(&mut fields);
        match (order_id, lines) {
            (Some(order_id), Some(lines)) if fields.errors.is_empty() => Ok(Self {
                order_id,
                lines,
                ttl: ttl.unwrap_or_default(),
                strategy,
                split,
            }),
            _ => Err(fields.errors),
        }
    }

    /// One total per product, in the order the products are first named.
    pub fn totals(&self) -> Vec<ProductTotal> {
        totals(&self.lines)
    }
}

/// `POST /reservations/{id}/commit` with a body: fewer units than held. A product not
/// named commits nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartialCommit {
    /// `None`: commit everything held.
    pub lines: Option<Vec<DeductLine>>,
}

impl PartialCommit {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(body, &["lines"]);
        let lines = lines(&mut fields, false, false);
        if fields.errors.is_empty() {
            Ok(Self { lines })
        } else {
            Err(fields.errors)
        }
    }

    /// What to commit of each product named, if any are.
    pub fn totals(&self) -> Option<Vec<ProductTotal>> {
        self.lines.as_deref().map(totals)
    }
}

/// `PATCH /reservations/{id}`: the hold now expires `ttl` from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension {
    pub ttl: TtlSeconds,
}

impl Extension {
    pub fn parse(body: &Map<String, Value>) -> Result<Self, Vec<FieldError>> {
        let mut fields = Fields::new(body, &["ttl_seconds"]);
        match fields.required("ttl_seconds", TtlSeconds::parse) {
            Some(ttl) if fields.errors.is_empty() => Ok(Self { ttl }),
            _ => Err(fields.errors),
        }
    }
}

/// The guard's records of holds (`wit/guard.wit`: `new-reservation`, `partial-commit`,
/// `extension`) and these types, converted both ways, here and only here (see
/// `product_records!`).
#[doc(hidden)]
#[macro_export]
macro_rules! reservation_records {
    ($wit:ident) => {
        impl From<$crate::reservation::NewReservation> for $wit::NewReservation {
            fn from(r: $crate::reservation::NewReservation) -> Self {
                Self {
                    order_id: r.order_id.as_str().to_owned(),
                    lines: r.lines.into_iter().map(Into::into).collect(),
                    ttl_seconds: r.ttl.get(),
                    strategy: r.strategy.into(),
                    split: r.split.into(),
                }
            }
        }

        impl From<$wit::NewReservation> for $crate::reservation::NewReservation {
            fn from(r: $wit::NewReservation) -> Self {
                Self {
                    order_id: $crate::stock::OrderId::from_checked(r.order_id),
                    lines: r.lines.into_iter().map(Into::into).collect(),
                    ttl: $crate::reservation::TtlSeconds::from_checked(r.ttl_seconds),
                    strategy: r.strategy.into(),
                    split: r.split.into(),
                }
            }
        }

        impl From<$crate::reservation::PartialCommit> for $wit::PartialCommit {
            fn from(c: $crate::reservation::PartialCommit) -> Self {
                Self {
                    lines: c
                        .lines
                        .map(|lines| lines.into_iter().map(Into::into).collect()),
                }
            }
        }

        impl From<$wit::PartialCommit> for $crate::reservation::PartialCommit {
            fn from(c: $wit::PartialCommit) -> Self {
                Self {
                    lines: c
                        .lines
                        .map(|lines| lines.into_iter().map(Into::into).collect()),
                }
            }
        }

        impl From<$crate::reservation::Extension> for $wit::Extension {
            fn from(e: $crate::reservation::Extension) -> Self {
                Self {
                    ttl_seconds: e.ttl.get(),
                }
            }
        }

        impl From<$wit::Extension> for $crate::reservation::Extension {
            fn from(e: $wit::Extension) -> Self {
                Self {
                    ttl: $crate::reservation::TtlSeconds::from_checked(e.ttl_seconds),
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
    fn a_hold_defaults_its_ttl_and_adds_up_lines_naming_one_product() {
        let hold = NewReservation::parse(&object(json!({
            "order_id": "ord-1",
            "lines": [{"product_id": 7, "quantity": 2}, {"product_id": 7, "quantity": 1}]
        })))
        .unwrap();
        assert_eq!(hold.ttl.get(), DEFAULT_TTL_SECONDS);
        let totals: Vec<(i64, i64)> = hold
            .totals()
            .iter()
            .map(|t| (t.product_id.get(), t.quantity))
            .collect();
        assert_eq!(totals, [(7, 3)]);
    }

    #[test]
    fn every_broken_field_of_a_hold_is_named() {
        let errors = NewReservation::parse(&object(json!({
            "lines": [{"product_id": 0, "quantity": 1}],
            "ttl_seconds": 86_401,
            "status": "active"
        })))
        .unwrap_err();
        assert_eq!(
            fields(errors),
            ["status", "order_id", "lines[0].product_id", "ttl_seconds"]
        );
        for ttl in [json!(0), json!(1.5), json!("60")] {
            assert!(TtlSeconds::parse(&ttl).is_err(), "{ttl}");
        }
    }

    #[test]
    fn a_commit_names_some_lines_or_none() {
        assert_eq!(PartialCommit::parse(&Map::new()).unwrap().totals(), None);
        let partial = PartialCommit::parse(&object(
            json!({"lines": [{"product_id": 3, "quantity": 1}]}),
        ))
        .unwrap();
        assert_eq!(partial.totals().unwrap().len(), 1);
        assert!(PartialCommit::parse(&object(json!({"lines": []}))).is_err());
        assert!(Extension::parse(&Map::new()).is_err());
    }
}
