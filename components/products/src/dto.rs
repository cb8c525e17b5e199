//! Response views of the products API that are not a product itself (a product serializes
//! as clients see it: `inventory::store::products::Product`). Request bodies are validated
//! by the guard.

use serde::Serialize;

use inventory::store::products::Product;

/// One page of the product list.
#[derive(Serialize)]
pub struct ProductPageView {
    pub items: Vec<Product>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
}

#[derive(Serialize)]
pub struct HealthView {
    pub status: &'static str,
}
