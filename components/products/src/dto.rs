//! Request bodies and response views of the products API.

use serde::Serialize;
use serde_json::{Map, Number, Value};

use inventory::domain::{NewProduct, ProductPatch};
use inventory::products::Product;
use inventory::FieldError;

/// `POST /product`: a JSON object, checked field by field.
pub struct CreateProductBody(pub Map<String, Value>);

impl TryFrom<CreateProductBody> for NewProduct {
    type Error = Vec<FieldError>;

    fn try_from(body: CreateProductBody) -> Result<Self, Self::Error> {
        NewProduct::parse(&body.0)
    }
}

/// `PUT`/`PATCH /product/{id}`: the fields to change.
pub struct UpdateProductBody(pub Map<String, Value>);

impl TryFrom<UpdateProductBody> for ProductPatch {
    type Error = Vec<FieldError>;

    fn try_from(body: UpdateProductBody) -> Result<Self, Self::Error> {
        ProductPatch::parse(&body.0)
    }
}

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
