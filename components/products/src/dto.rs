//! Response views of the products API (request bodies are validated by the guard).

use serde::Serialize;
use serde_json::Number;

use inventory::store::products::Product;

/// A product as clients see it.
#[derive(Serialize)]
pub struct ProductView {
    pub id: i64,
    pub sku: Option<String>,
    pub name: String,
    pub description: String,
    pub price: Number,
    pub stock: i64,
    pub category_id: Option<i64>,
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Product> for ProductView {
    fn from(p: Product) -> Self {
        Self {
            id: p.id,
            sku: p.sku,
            name: p.name,
            description: p.description,
            price: p.price.to_json(),
            stock: p.stock,
            category_id: p.category_id,
            version: p.version,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

/// One page of the product list.
#[derive(Serialize)]
pub struct ProductPageView {
    pub items: Vec<ProductView>,
    pub page: i64,
    pub limit: i64,
    pub total: i64,
}

#[derive(Serialize)]
pub struct HealthView {
    pub status: &'static str,
}
