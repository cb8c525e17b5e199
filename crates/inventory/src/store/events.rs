//! The events a change writes to the outbox, and the `data` each carries (README "Events to
//! order services"; `api/openapi.json` `webhooks`). `data.version` is the product's version
//! after the change, so a receiver that sees events out of order keeps the highest.
//!
//! A new event type is a variant here, its `data` builder, and a call in the store function
//! of the change that emits it.

use serde_json::{json, Value};

use crate::store::products::Product;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    ProductCreated,
    ProductUpdated,
    ProductDeleted,
    StockDeducted,
    StockRestocked,
    StockSet,
    /// The stock fell to or below `low_stock_threshold`.
    StockLow,
    /// The stock reached 0.
    StockDepleted,
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
            Self::StockLow => "stock.low",
            Self::StockDepleted => "stock.depleted",
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
    fn new(kind: EventType, product_id: i64, data: Value) -> Self {
        Self {
            kind,
            product_id,
            data,
        }
    }

    /// `product.created` / `product.updated`: the product as it now is.
    pub fn product(kind: EventType, p: &Product) -> Self {
        Self::new(
            kind,
            p.id,
            json!({
                "product_id": p.id,
                "sku": p.sku,
                "name": p.name,
                "price": p.price.to_json(),
                "stock": p.stock,
                "category_id": p.category_id,
                "version": p.version,
            }),
        )
    }

    /// `product.deleted`: the product as it was, one version on.
    pub fn product_deleted(p: &Product) -> Self {
        Self::new(
            EventType::ProductDeleted,
            p.id,
            json!({"product_id": p.id, "sku": p.sku, "version": p.version + 1}),
        )
    }
}

/// Why stock changed: the ledger's reason, and which event the change writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockCause<'a> {
    /// The product was created with its first stock (its event is `product.created`).
    Created,
    /// A stock count: `PUT`/`PATCH` of `stock`.
    Set,
    Deducted,
    Restocked {
        reason: &'a str,
    },
}

impl StockCause<'_> {
    /// The ledger's `reason`.
    pub fn reason(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Set => "set",
            Self::Deducted => "deducted",
            Self::Restocked { reason } => reason,
        }
    }
}

/// One product's stock, before and after a change.
#[derive(Debug, Clone, Copy)]
pub struct StockChange<'a> {
    pub product_id: i64,
    pub sku: Option<&'a str>,
    pub before: i64,
    pub after: i64,
    /// The product's version after the change.
    pub version: i64,
}

impl<'a> StockChange<'a> {
    /// The change that left `product` as it is, from a stock of `before`.
    pub fn of(product: &'a Product, before: i64) -> Self {
        Self {
            product_id: product.id,
            sku: product.sku.as_deref(),
            before,
            after: product.stock,
            version: product.version,
        }
    }

    /// The change's own event, then `stock.low` and `stock.depleted` if it crossed them.
    /// `order_id` is the order it was made for, if any.
    pub fn events(
        &self,
        cause: StockCause<'_>,
        order_id: Option<&str>,
        low_stock_threshold: i64,
    ) -> Vec<Event> {
        let (id, sku, stock, version) = (self.product_id, self.sku, self.after, self.version);
        let delta = self.after - self.before;
        let own = match cause {
            StockCause::Created => None,
            StockCause::Deducted => Some(Event::new(
                EventType::StockDeducted,
                id,
                json!({"product_id": id, "sku": sku, "stock": stock, "delta": delta,
                       "order_id": order_id, "version": version}),
            )),
            StockCause::Restocked { reason } => Some(Event::new(
                EventType::StockRestocked,
                id,
                json!({"product_id": id, "sku": sku, "stock": stock, "delta": delta,
                       "order_id": order_id, "reason": reason, "version": version}),
            )),
            StockCause::Set => Some(Event::new(
                EventType::StockSet,
                id,
                json!({"product_id": id, "sku": sku, "stock": stock, "delta": delta,
                       "version": version}),
            )),
        };
        let mut events: Vec<Event> = own.into_iter().collect();
        if cause == StockCause::Created {
            return events;
        }
        if self.before > low_stock_threshold && self.after <= low_stock_threshold {
            events.push(Event::new(
                EventType::StockLow,
                id,
                json!({"product_id": id, "sku": sku, "stock": stock,
                       "threshold": low_stock_threshold, "version": version}),
            ));
        }
        if self.before > 0 && self.after == 0 {
            events.push(Event::new(
                EventType::StockDepleted,
                id,
                json!({"product_id": id, "sku": sku, "stock": stock, "version": version}),
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
            before,
            after,
            version: 3,
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
            json!({"product_id": 7, "sku": "MUG", "stock": 8, "delta": -2,
                   "order_id": null, "reason": "returned", "version": 3})
        );
    }
}
