//! Body validation: the domain's parsers, every broken field reported at once.

use inventory_domain::stock;
use inventory_domain::{FieldError, NewProduct as Product, ProductPatch as Patch};
use serde_json::{Map, Value};

use crate::exports::inventory::guard::validation::{
    BatchDeduct, Deduct, DeductLine, FieldError as WitFieldError, NewProduct, ProductPatch,
    Restock, ValidationError,
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

pub fn deduct(body: &[u8]) -> Result<Deduct, ValidationError> {
    let d = stock::Deduct::parse(&object(body)?).map_err(fields)?;
    Ok(Deduct {
        quantity: d.quantity.get(),
        order_id: d.order_id.as_str().to_owned(),
    })
}

pub fn restock(body: &[u8]) -> Result<Restock, ValidationError> {
    let r = stock::Restock::parse(&object(body)?).map_err(fields)?;
    Ok(Restock {
        quantity: r.quantity.get(),
        order_id: r.order_id.map(|o| o.as_str().to_owned()),
        reason: r.reason.as_str().to_owned(),
    })
}

pub fn batch_deduct(body: &[u8]) -> Result<BatchDeduct, ValidationError> {
    let b = stock::BatchDeduct::parse(&object(body)?).map_err(fields)?;
    Ok(BatchDeduct {
        order_id: b.order_id.as_str().to_owned(),
        lines: b
            .lines
            .iter()
            .map(|line| DeductLine {
                product_id: line.product_id.get(),
                quantity: line.quantity.get(),
            })
            .collect(),
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
