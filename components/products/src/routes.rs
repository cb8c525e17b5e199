//! The products routes and their handlers.

use inventory::store::products::{self, ListFilter, WriteOutcome};
use inventory::web::guard;
use inventory::web::http::{header, status, Method};
use inventory::web::idempotency;
use inventory::web::paging::{bad_param, int_param, PageQuery};
use inventory::{Access, ApiError, Call, Handler, Resp, Route};

use crate::conditional::{self, etag};
use crate::dto::{HealthView, ProductPageView};

const READ: Access = Access::AnyOf(&["inventory:read"]);
const WRITE: Access = Access::AnyOf(&["inventory:write"]);

pub const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/health",
        access: Access::Open,
        handler: Handler::Sync(get_health),
    },
    Route {
        method: Method::Get,
        path: "/product",
        access: READ,
        handler: Handler::Sync(list_products),
    },
    Route {
        method: Method::Post,
        path: "/product",
        access: WRITE,
        handler: Handler::Sync(create_product),
    },
    Route {
        method: Method::Get,
        path: "/product/{id}",
        access: READ,
        handler: Handler::Sync(get_product),
    },
    Route {
        method: Method::Put,
        path: "/product/{id}",
        access: WRITE,
        handler: Handler::Sync(update_product),
    },
    Route {
        method: Method::Patch,
        path: "/product/{id}",
        access: WRITE,
        handler: Handler::Sync(update_product),
    },
    Route {
        method: Method::Delete,
        path: "/product/{id}",
        access: WRITE,
        handler: Handler::Sync(delete_product),
    },
];

const MAX_QUERY_CHARS: usize = 200;

/// `GET /health`: the database answers (opening it reads the app's clock, so a probe also
/// hands due events and expired holds to the notifier, after its answer).
fn get_health(call: &Call<'_>) -> Result<Resp, ApiError> {
    call.db().map_err(|err| match err {
        ApiError::Internal(cause) | ApiError::Unavailable(cause) => ApiError::Unavailable(cause),
        other => other,
    })?;
    Ok(Resp::json(status::OK, &HealthView { status: "ok" }).probing())
}

fn product_response(status: u16, product: products::Product) -> Resp {
    let tag = etag(&product);
    Resp::json(status, &product).with_header(header::ETAG, &tag)
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("product {id} does not exist"))
}

fn create_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let new = guard::new_product(&call.req.body)?;
    let write = idempotency::unkeyed(call)?;
    let product = products::create(write.tx(), &new)?;
    let location = format!("/product/{}", product.id);
    write.answer(Ok(
        product_response(status::CREATED, product).with_header(header::LOCATION, &location)
    ))
}

fn get_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let product = products::get(call.db()?, id)?.ok_or_else(|| not_found(id))?;
    if conditional::if_none_match(call.req, &product) {
        return Ok(Resp::new(status::NOT_MODIFIED).with_header(header::ETAG, &etag(&product)));
    }
    Ok(product_response(status::OK, product))
}

fn update_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let patch = guard::product_patch(&call.req.body)?;
    let expected = conditional::if_match(call.req)?.versions();
    // A stock count set without naming the version it was read at could undo the deducts
    // made since: stock sets are compare-and-set.
    if patch.stock.is_some() && expected.is_none() {
        return Err(ApiError::PreconditionRequired(
            "setting `stock` needs If-Match with the product's ETag, so deducts made since \
             you read it are not undone"
                .into(),
        ));
    }
    let write = idempotency::unkeyed(call)?;
    let answer = match products::update(write.tx(), id, &patch, expected.as_deref())? {
        WriteOutcome::Done(product) => Ok(product_response(status::OK, product)),
        WriteOutcome::NotFound => Err(not_found(id)),
        WriteOutcome::VersionMismatch(current) => Err(stale(&current)),
        WriteOutcome::Held(units) => Err(held(units)),
        WriteOutcome::LocationRequired => Err(ApiError::LocationRequired),
    };
    write.answer(answer)
}

fn delete_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let expected = conditional::if_match(call.req)?.versions();
    let write = idempotency::unkeyed(call)?;
    let answer = match products::delete(write.tx(), id, expected.as_deref())? {
        WriteOutcome::Done(()) => Ok(Resp::new(status::NO_CONTENT)),
        WriteOutcome::NotFound => Err(not_found(id)),
        WriteOutcome::VersionMismatch(current) => Err(stale(&current)),
        WriteOutcome::Held(units) => Err(held(units)),
        WriteOutcome::LocationRequired => {
            Err(ApiError::Internal("a delete asked for a location".into()))
        }
    };
    write.answer(answer)
}

/// Active holds have `units` of the product: their commits must find it.
fn held(units: i64) -> ApiError {
    ApiError::Conflict(format!(
        "{units} unit(s) of the product are held by active holds: commit or release them, or \
         let them expire, then delete it; nothing was changed"
    ))
}

fn stale(current: &products::Product) -> ApiError {
    ApiError::PreconditionFailed(format!(
        "the product has changed: its current ETag is {}",
        etag(current)
    ))
}

/// `GET /product?page&limit&category_id&q&in_stock`.
fn list_products(call: &Call<'_>) -> Result<Resp, ApiError> {
    let mut filter = ListFilter::default();
    let query = PageQuery::parse(
        &call.req.query,
        "page, limit, category_id, q, in_stock",
        |key, value| {
            match key {
                "category_id" => filter.category_id = Some(int_param(key, value, 1, i64::MAX)?),
                "q" => {
                    if value.chars().count() > MAX_QUERY_CHARS {
                        return Err(bad_param(
                            key,
                            &format!("must be at most {MAX_QUERY_CHARS} characters"),
                        ));
                    }
                    filter.name_contains = Some(value.to_owned());
                }
                "in_stock" => {
                    filter.in_stock = Some(match value {
                        "true" => true,
                        "false" => false,
                        _ => return Err(bad_param(key, "must be true or false")),
                    })
                }
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    let (page, limit) = (query.page, query.limit);
    let (items, total) = products::list(call.db()?, &filter, page, limit)?;
    let links = query.links("/product", total);
    let view = ProductPageView {
        items,
        page,
        limit,
        total,
    };
    Ok(Resp::json(status::OK, &view).with_header(header::LINK, &links))
}
