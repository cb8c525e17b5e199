//! The events a change writes to the outbox, and the `data` each carries (README "Events to
//! order services"; `api/openapi.json` `webhooks`). `data.version` is the product's version
//! after the change, so a receiver that sees events out of order keeps the highest.
//!
//! A new event type is a variant here, its `data` builder (here, or for a product's own
//! events beside `Product` in `products.rs`), and a call in the store function of the change
//! that emits it.
//!
//! Every event has a product's line (`product_id`): per receiver and product, events go out
//! in commit order. A hold's events (`reservation.*`) go on the line of its first product,
//! so they are ordered among themselves and after that product's own events.

use serde_json::{json, Value};

use crate::domain::allocation::Allocation;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    ProductCreated,
    ProductUpdated,
    ProductDeleted,
    StockDeducted,
    StockRestocked,
    StockSet,
    StockTransferred,
    /// `available` fell to or below `low_stock_threshold`.
    StockLow,
    /// `available` reached 0.
    StockDepleted,
    ReservationCreated,
    ReservationCommitted,
    ReservationReleased,
    ReservationExpired,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ProductCreated => "product.created",
            Self::ProductUpdated => "product.updated",
            Self::ProductDeleted => "product.deleted",
            Self::StockDeducted => "stock.deducted",
            Self::StockRestocked => "stock.restocked",
            Self::StockSet => "stock.set",
            Self::StockTransferred => "stock.transferred",
            Self::StockLow => "stock.low",
            Self::StockDepleted => "stock.depleted",
            Self::ReservationCreated => "reservation.created",
            Self::ReservationCommitted => "reservation.committed",
            Self::ReservationReleased => "reservation.released",
            Self::ReservationExpired => "reservation.expired",
        }
    }
}

/// One event about to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventType,
    pub product_id: i64,
    pub data: Value,
}

impl Event {
    pub fn new(kind: EventType, product_id: i64, data: Value) -> Self {
        Self {
            kind,
            product_id,
            data,
        }
    }

    /// `reservation.*`: the hold and its lines (held, or for a commit, committed), on the
    /// line of its first product.
    pub fn reservation(
        kind: EventType,
        reservation_id: &str,
        order_id: &str,
        lines: &[(i64, i64, &[Allocation])],
    ) -> Self {
        let line = lines.first().map_or(0, |(product_id, _, _)| *product_id);
        let lines: Vec<Value> = lines
            .iter()
            .map(|(product_id, quantity, allocations)| {
                let allocations: Vec<Value> = allocations
                    .iter()
                    .map(|a| json!({"location_id": a.location_id, "quantity": a.quantity}))
                    .collect();
                json!({"product_id": product_id, "quantity": quantity,
                       "allocations": allocations})
            })
            .collect();
        Self::new(
            kind,
            line,
            json!({"reservation_id": reservation_id, "order_id": order_id, "lines": lines}),
        )
    }
}

/// Why a product's quantities changed: the ledger's reason, and which event the change
/// writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockCause<'a> {
    /// The product was created with its first stock (its event is `product.created`).
    Created,
    /// A stock count: `PUT`/`PATCH` of `stock`.
    Set,
    /// A deduct, a batch's line, or a hold's commit.
    Deducted,
    Restocked {
        reason: &'a str,
    },
    /// Units moved between two locations of the product.
    Transferred {
        transfer_id: &'a str,
        from: &'a str,
        to: &'a str,
        quantity: i64,
        reason: &'a str,
    },
    /// A hold took units out of `available` (its event is `reservation.created`).
    Held,
    /// A hold ended without a sale and gave its units back to `available`.
    Released,
}

impl StockCause<'_> {
    /// The ledger's `reason`, for a change of `stock`.
    pub fn reason(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Set => "set",
            Self::Deducted => "deducted",
            Self::Restocked { reason } | Self::Transferred { reason, .. } => reason,
            Self::Held | Self::Released => "held",
        }
    }

    /// Whether the change moves `stock` (and so writes a ledger row).
    pub fn moves_stock(&self) -> bool {
        !matches!(self, Self::Held | Self::Released)
    }
}

/// One level's quantities, before and after a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelChange {
    pub location_id: String,
    /// (before, after)
    pub stock: (i64, i64),
    pub reserved: (i64, i64),
}

impl LevelChange {
    pub fn delta(&self) -> i64 {
        self.stock.1 - self.stock.0
    }

    /// As events carry it: after the change.
    fn to_json(&self) -> Value {
        json!({"location_id": self.location_id, "delta": self.delta(), "stock": self.stock.1,
               "reserved": self.reserved.1,
               "available": (self.stock.1 - self.reserved.1).max(0)})
    }
}

/// One product's quantities, before and after a change: `stock` on hand, `reserved` by
/// active holds, and `available`, each the sum over its levels at active locations (so
/// `available` is the sum of the levels' own, each never below 0), and the levels changed.
#[derive(Debug, Clone)]
pub struct StockChange<'a> {
    pub product_id: i64,
    pub sku: Option<&'a str>,
    /// (before, after)
    pub stock: (i64, i64),
    pub reserved: (i64, i64),
    pub available: (i64, i64),
    /// The product's version after the change.
    pub version: i64,
    pub levels: Vec<LevelChange>,
}

impl StockChange<'_> {
    pub fn delta(&self) -> i64 {
        self.stock.1 - self.stock.0
    }

    /// `available` before and after.
    pub fn available(&self) -> (i64, i64) {
        self.available
    }

    /// The change's own event, then `stock.low` and `stock.depleted` if `available` crossed
    /// them. `order_id` is the order it was made for, if any.
    pub fn events(
        &self,
        cause: StockCause<'_>,
        order_id: Option<&str>,
        low_stock_threshold: i64,
    ) -> Vec<Event> {
        let (id, sku, version) = (self.product_id, self.sku, self.version);
        let (stock, reserved) = (self.stock.1, self.reserved.1);
        let (was_available, available) = self.available();
        let delta = self.delta();
        let levels: Vec<Value> = self.levels.iter().map(LevelChange::to_json).collect();
        let own = match cause {
            StockCause::Deducted => Some((
                EventType::StockDeducted,
                json!({"product_id": id, "sku": sku, "stock": stock, "reserved": reserved,
                       "available": available, "delta": delta, "order_id": order_id,
                       "version": version, "levels": levels}),
            )),
            StockCause::Restocked { reason } => Some((
                EventType::StockRestocked,
                json!({"product_id": id, "sku": sku, "stock": stock, "reserved": reserved,
                       "available": available, "delta": delta, "order_id": order_id,
                       "reason": reason, "version": version, "levels": levels}),
            )),
            StockCause::Set => Some((
                EventType::StockSet,
                json!({"product_id": id, "sku": sku, "stock": stock, "reserved": reserved,
                       "available": available, "delta": delta, "version": version, "levels": levels}),
            )),
            StockCause::Transferred {
                transfer_id,
                from,
                to,
                quantity,
                ..
            } => Some((
                EventType::StockTransferred,
                json!({"product_id": id, "sku": sku, "stock": stock, "reserved": reserved,
                       "available": available, "delta": delta, "transfer_id": transfer_id,
                       "from": from, "to": to, "quantity": quantity, "version": version,
                       "levels": levels}),
            )),
            StockCause::Created | StockCause::Held | StockCause::Released => None,
        };
        let mut events: Vec<Event> = own
            .map(|(kind, data)| Event::new(kind, id, data))
            .into_iter()
            .collect();
        if cause == StockCause::Created {
            return events;
        }
        if was_available > low_stock_threshold && available <= low_stock_threshold {
            events.push(Event::new(
                EventType::StockLow,
                id,
                json!({"product_id": id, "sku": sku, "stock": stock, "reserved": reserved,
                       "available": available, "threshold": low_stock_threshold,
                       "version": version, "levels": levels}),
            ));
        }
        if was_available > 0 && available == 0 {
            events.push(Event::new(
                EventType::StockDepleted,
                id,
                json!({"product_id": id, "sku": sku, "stock": stock, "reserved": reserved,
                       "available": available, "version": version, "levels": levels}),
            ));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(before: i64, after: i64) -> StockChange<'static> {
        StockChange {
            product_id: 7,
            sku: Some("MUG"),
            stock: (before, after),
            reserved: (0, 0),
            available: (before, after),
            version: 3,
            levels: vec![LevelChange {
                location_id: "default".into(),
                stock: (before, after),
                reserved: (0, 0),
            }],
        }
    }

    fn kinds(events: &[Event]) -> Vec<&'static str> {
        events.iter().map(|e| e.kind.as_str()).collect()
    }

    #[test]
    fn low_and_depleted_fire_only_when_the_change_crosses_them() {
        let deducted =
            |before, after| change(before, after).events(StockCause::Deducted, Some("o-1"), 5);
        assert_eq!(kinds(&deducted(10, 6)), ["stock.deducted"]);
        assert_eq!(kinds(&deducted(10, 5)), ["stock.deducted", "stock.low"]);
        assert_eq!(
            kinds(&deducted(6, 0)),
            ["stock.deducted", "stock.low", "stock.depleted"]
        );
        // Already low: no second `stock.low`; depleted once, on reaching 0.
        assert_eq!(kinds(&deducted(3, 0)), ["stock.deducted", "stock.depleted"]);
        assert_eq!(
            kinds(&change(0, 4).events(StockCause::Set, None, 5)),
            ["stock.set"]
        );
        // A new product's event is `product.created`, whatever its stock.
        assert!(change(0, 2).events(StockCause::Created, None, 5).is_empty());
    }

    #[test]
    fn stock_data_carries_the_delta_and_the_version_after() {
        let events = change(10, 8).events(StockCause::Restocked { reason: "returned" }, None, 5);
        assert_eq!(
            events[0].data,
            json!({"product_id": 7, "sku": "MUG", "stock": 8, "reserved": 0, "available": 8,
                   "delta": -2, "order_id": null, "reason": "returned", "version": 3,
                   "levels": [{"location_id": "default", "delta": -2, "stock": 8,
                               "reserved": 0, "available": 8}]})
        );
    }

    #[test]
    fn thresholds_are_crossed_by_available_so_holds_cross_them_too() {
        let held = |reserved_before: i64, reserved_after: i64| StockChange {
            reserved: (reserved_before, reserved_after),
            available: (10 - reserved_before, 10 - reserved_after),
            ..change(10, 10)
        };
        // A hold of 5 on 10: available 10 -> 5, low at 5.
        assert_eq!(
            kinds(&held(0, 5).events(StockCause::Held, None, 5)),
            ["stock.low"]
        );
        // Then the last 5: depleted, and no second low.
        assert_eq!(
            kinds(&held(5, 10).events(StockCause::Held, None, 5)),
            ["stock.depleted"]
        );
        // Units given back fire nothing.
        assert!(held(10, 0).events(StockCause::Released, None, 5).is_empty());
    }
}
