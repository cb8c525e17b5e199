//! The stock routes and their handlers.

use inventory::domain::allocation::Want;
use inventory::domain::location::LocationId;
use inventory::domain::{FieldError, MAX_STOCK};
use inventory::store::ledger::{self, Context};
use inventory::store::stock::{self, How, Refusal, Restock, Taking};
use inventory::store::{moves, products};
use inventory::web::guard;
use inventory::web::http::{header, status, Method};
use inventory::web::idempotency::{self, Begun, Idempotent};
use inventory::web::paging::{bad_param, PageQuery};
use inventory::{Access, ApiError, Call, Handler, Resp, Route};

use inventory::store::levels::DEFAULT_LOCATION;
use inventory::web::taken::{AllocationView, DeductedLine};

use crate::dto::{BatchDeductedView, DeductedView, MovementPageView, RestockedView};

const DEDUCT: Access = Access::AnyOf(&["stock:deduct"]);
/// A restock is the order service's compensation for a cancelled order, or a stock
/// correction by someone who may edit the catalogue.
const RESTOCK: Access = Access::AnyOf(&["stock:deduct", "inventory:write"]);
const READ: Access = Access::AnyOf(&["inventory:read"]);
/// Moving stock between locations is the catalogue's keepers' work, or the order service's.
const TRANSFER: Access = Access::AnyOf(&["inventory:write", "stock:deduct"]);

pub const ROUTES: &[Route] = &[
    Route {
        method: Method::Post,
        path: "/product/{id}/deduct",
        access: DEDUCT,
        handler: Handler::Sync(deduct_stock),
    },
    Route {
        method: Method::Post,
        path: "/stock/deduct",
        access: DEDUCT,
        handler: Handler::Sync(deduct_stock_batch),
    },
    Route {
        method: Method::Post,
        path: "/product/{id}/restock",
        access: RESTOCK,
        handler: Handler::Sync(restock_product),
    },
    Route {
        method: Method::Get,
        path: "/product/{id}/movements",
        access: READ,
        handler: Handler::Sync(list_movements),
    },
    Route {
        method: Method::Post,
        path: "/transfers",
        access: TRANSFER,
        handler: Handler::Sync(create_transfer),
    },
    Route {
        method: Method::Get,
        path: "/transfers/{id}",
        access: READ,
        handler: Handler::Sync(get_transfer),
    },
];

/// The ledger context of a keyed stock write: its order and its key.
fn context<'a>(order_id: Option<&'a str>, once: &'a Idempotent) -> Context<'a> {
    Context {
        order_id,
        idempotency_key: Some(once.key()),
        transfer_id: None,
    }
}

/// `POST /product/{id}/deduct` `{"quantity", "order_id"}`.
fn deduct_stock(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let once = Idempotent::required(call, &format!("/product/{id}/deduct"))?;
    let request = guard::deduct(&call.req.body)?;
    let (quantity, order_id) = (request.quantity.get(), request.order_id.as_str());
    let write = match idempotency::begin(call, Some(&once))? {
        Begun::Fresh(write) => write,
        Begun::Replayed(resp) => return Ok(resp),
    };
    let wants = [Want {
        product_id: id,
        quantity,
        source: request.source.clone(),
    }];
    let taking = Taking {
        lines: &wants,
        how: How::Deduct,
        strategy: request.strategy,
        split: request.split,
        context: context(Some(order_id), &once),
        told: Vec::new(),
    };
    let answer = match stock::take(write.tx(), taking)? {
        Ok(taken) => taken
            .first()
            .map(|line| Resp::json(status::OK, &DeductedView::new(line, order_id)))
            .ok_or_else(|| ApiError::Internal("a deduct took no line".into())),
        Err(Refusal::NotFound(_)) => Err(not_found(id)),
        Err(Refusal::Locations(refused)) => {
            Err(ApiError::unusable_locations(&refused, &wants, true))
        }
        Err(Refusal::Short(short)) => Err(match short.as_slice() {
            [line] => ApiError::InsufficientStock {
                requested: line.requested,
                available: line.available,
                by_location: line.by_location.clone(),
            },
            _ => ApiError::InsufficientStockLines(short),
        }),
    };
    write.answer(answer)
}

/// `POST /stock/deduct` `{"order_id", "lines": [{"product_id", "quantity"}]}`: all or none.
fn deduct_stock_batch(call: &Call<'_>) -> Result<Resp, ApiError> {
    let once = Idempotent::required(call, "/stock/deduct")?;
    let request = guard::batch_deduct(&call.req.body)?;
    let order_id = request.order_id.as_str();
    let write = match idempotency::begin(call, Some(&once))? {
        Begun::Fresh(write) => write,
        Begun::Replayed(resp) => return Ok(resp),
    };
    let wants = stock::wants(&request.lines);
    let taking = Taking {
        lines: &wants,
        how: How::Deduct,
        strategy: request.strategy,
        split: request.split,
        context: context(Some(order_id), &once),
        told: Vec::new(),
    };
    let answer = match stock::take(write.tx(), taking)? {
        Ok(taken) => {
            let lines = taken.iter().map(DeductedLine::from).collect();
            Ok(Resp::json(
                status::OK,
                &BatchDeductedView { order_id, lines },
            ))
        }
        Err(Refusal::NotFound(ids)) => Err(ApiError::unknown_products(&ids, "deducted")),
        Err(Refusal::Locations(refused)) => {
            Err(ApiError::unusable_locations(&refused, &wants, false))
        }
        Err(Refusal::Short(lines)) => Err(ApiError::InsufficientStockLines(lines)),
    };
    write.answer(answer)
}

/// `POST /product/{id}/restock` `{"quantity", "order_id"?, "reason"?}`.
fn restock_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let once = Idempotent::required(call, &format!("/product/{id}/restock"))?;
    let request = guard::restock(&call.req.body)?;
    let quantity = request.quantity.get();
    let order_id = request.order_id.as_ref().map(|o| o.as_str());
    let reason = request.reason.as_str();
    let location = request
        .location_id
        .as_ref()
        .map_or(DEFAULT_LOCATION, |l| l.as_str());
    let write = match idempotency::begin(call, Some(&once))? {
        Begun::Fresh(write) => write,
        Begun::Replayed(resp) => return Ok(resp),
    };
    let context = context(order_id, &once);
    let answer = match stock::restock(write.tx(), id, quantity, location, reason, &context)? {
        Restock::Done(totals) => Ok(Resp::json(
            status::OK,
            &RestockedView {
                product_id: id,
                stock: totals.stock,
                reserved: totals.reserved,
                available: totals.available,
                restocked: quantity,
                order_id,
                reason,
                allocations: vec![AllocationView {
                    location_id: location.to_owned(),
                    quantity,
                }],
            },
        )),
        Restock::NotFound => Err(not_found(id)),
        Restock::Unusable => Err(ApiError::Validation(vec![FieldError::new(
            "location_id",
            format!("location {location} does not exist or is inactive"),
        )])),
        Restock::TooMuch { stock } => Err(ApiError::Conflict(format!(
            "the stock would exceed {MAX_STOCK} (it is {stock}); nothing was restocked"
        ))),
    };
    write.answer(answer)
}

/// `GET /product/{id}/movements?page&limit&location_id`: the ledger, newest first.
fn list_movements(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let mut location = None;
    let query = PageQuery::parse(&call.req.query, "page, limit, location_id", |key, value| {
        if key != "location_id" {
            return Ok(false);
        }
        let id =
            LocationId::new(value.to_owned()).map_err(|err| bad_param(key, &err.to_string()))?;
        location = Some(id.into_string());
        Ok(true)
    })?;
    let db = call.db()?;
    if products::get(db, id)?.is_none() {
        return Err(not_found(id));
    }
    let (entries, total) = ledger::page(db, id, location.as_deref(), query.page, query.limit)?;
    let view = MovementPageView {
        items: entries,
        page: query.page,
        limit: query.limit,
        total,
    };
    let links = query.links(&format!("/product/{id}/movements"), total);
    Ok(Resp::json(status::OK, &view).with_header(header::LINK, &links))
}

/// `POST /transfers` `{"product_id", "from", "to", "quantity", "reason"?}`.
fn create_transfer(call: &Call<'_>) -> Result<Resp, ApiError> {
    let once = Idempotent::required(call, "/transfers")?;
    let request = guard::new_transfer(&call.req.body)?;
    let write = match idempotency::begin(call, Some(&once))? {
        Begun::Fresh(write) => write,
        Begun::Replayed(resp) => return Ok(resp),
    };
    let context = context(None, &once);
    let answer = match moves::transfer(write.tx(), &request, &context)? {
        moves::Outcome::Created(transfer) => {
            let path = format!("/transfers/{}", transfer.id);
            Ok(Resp::json(status::CREATED, &transfer).with_header(header::LOCATION, &path))
        }
        moves::Outcome::NotFound(_) => Err(not_found(request.product_id.get())),
        moves::Outcome::Unusable(field, location) => {
            Err(ApiError::Validation(vec![FieldError::new(
                field,
                match field {
                    "from" => format!("location {location} does not exist"),
                    _ => format!("location {location} does not exist or is inactive"),
                },
            )]))
        }
        moves::Outcome::Short { available } => Err(ApiError::InsufficientStock {
            requested: request.quantity.get(),
            available,
            by_location: vec![(request.from.as_str().to_owned(), available)],
        }),
        other => Err(ApiError::Internal(format!("a transfer ended as {other:?}"))),
    };
    write.answer(answer)
}

/// `GET /transfers/{id}`.
fn get_transfer(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.param("id").unwrap_or("");
    let missing = || ApiError::NotFound(format!("transfer {id} does not exist"));
    if !moves::is_transfer_id(id) {
        return Err(missing());
    }
    let transfer = moves::get_transfer(call.db()?, id)?.ok_or_else(missing)?;
    Ok(Resp::json(status::OK, &transfer))
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no product with id {id}"))
}
