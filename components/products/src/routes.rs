//! The products routes and their handlers.

use inventory::domain::FieldError;
use inventory::store::products::{self, ListFilter, WriteOutcome};
use inventory::web::guard;
use inventory::web::http::{header, status, Method};
use inventory::web::idempotency;
use inventory::web::paging::{bad_param, int_param, PageQuery};
use inventory::web::query;
use inventory::{Access, ApiError, Call, Handler, Resp, Route};

use crate::conditional::{self, etag};
use crate::dto::{HealthView, ProductPageView};
use crate::locations;

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
    Route {
        method: Method::Get,
        path: "/product/{id}/stock",
        access: READ,
        handler: Handler::Sync(locations::list_levels),
    },
    Route {
        method: Method::Get,
        path: "/product/{id}/stock/{location_id}",
        access: READ,
        handler: Handler::Sync(locations::get_level),
    },
    Route {
        method: Method::Put,
        path: "/product/{id}/stock/{location_id}",
        access: WRITE,
        handler: Handler::Sync(locations::put_level),
    },
    Route {
        method: Method::Delete,
        path: "/product/{id}/stock/{location_id}",
        access: WRITE,
        handler: Handler::Sync(locations::delete_level),
    },
    Route {
        method: Method::Get,
        path: "/locations",
        access: READ,
        handler: Handler::Sync(locations::list_locations),
    },
    Route {
        method: Method::Post,
        path: "/locations",
        access: WRITE,
        handler: Handler::Sync(locations::create_location),
    },
    Route {
        method: Method::Get,
        path: "/locations/{location_id}",
        access: READ,
        handler: Handler::Sync(locations::get_location),
    },
    Route {
        method: Method::Patch,
        path: "/locations/{location_id}",
        access: WRITE,
        handler: Handler::Sync(locations::update_location),
    },
    Route {
        method: Method::Delete,
        path: "/locations/{location_id}",
        access: WRITE,
        handler: Handler::Sync(locations::delete_location),
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
    if let Some(location) = &new.location_id {
        let usable =
            inventory::store::locations::active_of(write.tx(), &[location.as_str().into()])?;
        if !usable.contains(location.as_str()) {
            return write.answer(Err(ApiError::Validation(vec![FieldError::new(
                "location_id",
                "must name an existing, active location",
            )])));
        }
    }
    let product = products::create(write.tx(), &new)?;
    let location = format!("/product/{}", product.id);
    write.answer(Ok(
        product_response(status::CREATED, product).with_header(header::LOCATION, &location)
    ))
}

fn get_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let pairs = query::parse(&call.req.query).ok_or_else(|| {
        ApiError::InvalidRequest("the query string is not valid percent-encoded UTF-8".into())
    })?;
    let (mut location_id, mut list) = (None, None);
    for (key, value) in &pairs {
        match key.as_str() {
            "location_id" if location_id.is_none() => location_id = Some(value.as_str()),
            "locations" if list.is_none() => list = Some(value.as_str()),
            _ => {
                return Err(bad_param(
                    key,
                    "is not a known parameter (location_id, locations), or is given twice",
                ))
            }
        }
    }
    let scope = locations::scope(call, location_id, list)?;
    let product = products::get(call.db()?, id)?.ok_or_else(|| not_found(id))?;
    let product = match &scope {
        Some(locations) => product.narrowed(locations),
        None => product,
    };
    if conditional::if_none_match(call.req, &product) {
        return Ok(Resp::new(status::NOT_MODIFIED).with_header(header::ETAG, &etag(&product)));
    }
    Ok(product_response(status::OK, product))
}

fn update_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let patch = guard::product_patch(&call.req.body)?;
    let expected = conditional::if_match(call.req)?.versions();
    let write = idempotency::unkeyed(call)?;
    let answer = match products::update(write.tx(), id, &patch, expected.as_deref())? {
        WriteOutcome::Done(product) => Ok(product_response(status::OK, product)),
        // A stock count set without naming the version it was read at could undo the
        // deducts made since: stock sets are compare-and-set.
        WriteOutcome::VersionRequired => Err(ApiError::PreconditionRequired(
            "setting `stock` needs If-Match with the product's ETag, so deducts made since \
             you read it are not undone"
                .into(),
        )),
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
        WriteOutcome::LocationRequired | WriteOutcome::VersionRequired => Err(ApiError::Internal(
            "a delete asked for a location or a version".into(),
        )),
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
    let (mut location_id, mut list) = (None, None);
    let query = PageQuery::parse(
        &call.req.query,
        "page, limit, category_id, q, in_stock, location_id, locations",
        |key, value| {
            match key {
                "location_id" => location_id = Some(value.to_owned()),
                "locations" => list = Some(value.to_owned()),
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
    filter.locations = locations::scope(call, location_id.as_deref(), list.as_deref())?;
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
