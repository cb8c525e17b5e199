//! Body validation: the domain's parsers, every broken field reported at once.

use inventory_domain::{FieldError, NewProduct as Product, ProductPatch as Patch};
use serde_json::{Map, Value};

use crate::exports::inventory::guard::validation::{
    FieldError as WitFieldError, NewProduct, ProductPatch, ValidationError,
};

pub fn new_product(body: &[u8]) -> Result<NewProduct, ValidationError> {
    let product = Product::parse(&object(body)?).map_err(fields)?;
    Ok(NewProduct {
        name: product.name.as_str().to_owned(),
        description: product.description.as_str().to_owned(),
        price_cents: product.price.cents(),
        stock: product.stock.get(),
        category_id: product.category_id.map(|c| c.get()),
        sku: product.sku.map(|s| s.as_str().to_owned()),
    })
}

pub fn product_patch(body: &[u8]) -> Result<ProductPatch, ValidationError> {
    let patch = Patch::parse(&object(body)?).map_err(fields)?;
    Ok(ProductPatch {
        name: patch.name.map(|n| n.as_str().to_owned()),
        description: patch.description.map(|d| d.as_str().to_owned()),
        price_cents: patch.price.map(|p| p.cents()),
        stock: patch.stock.map(|s| s.get()),
        category_id: patch.category_id.map(|c| c.map(|c| c.get())),
        sku: patch.sku.map(|s| s.map(|s| s.as_str().to_owned())),
    })
}

fn object(body: &[u8]) -> Result<Map<String, Value>, ValidationError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ValidationError::Malformed(
            "the request body must be a JSON object".into(),
        )),
        Err(err) => Err(ValidationError::Malformed(format!(
            "the request body is not valid JSON: {err}"
        ))),
    }
}

fn fields(errors: Vec<FieldError>) -> ValidationError {
    ValidationError::Fields(
        errors
            .into_iter()
            .map(|e| WitFieldError {
                field: e.field,
                message: e.message,
            })
            .collect(),
    )
}
