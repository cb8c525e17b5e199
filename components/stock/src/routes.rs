//! The stock routes and their handlers.

use inventory::domain::allocation::{Split, Strategy};
use inventory::domain::MAX_STOCK;
use inventory::store::ledger::{self, Context};
use inventory::store::stock::{self, How, Line, Refusal, Restock, Taking};
use inventory::store::{held, products};
use inventory::web::guard;
use inventory::web::http::{header, status, Method};
use inventory::web::idempotency::{self, Begun, Idempotent};
use inventory::web::paging::PageQuery;
use inventory::{Access, ApiError, Call, Handler, Resp, Route};

use inventory::store::levels::DEFAULT_LOCATION;
use inventory::web::taken::{AllocationView, DeductedLine};

use crate::dto::{BatchDeductedView, DeductedView, MovementPageView, RestockedView};

const DEDUCT: Access = Access::AnyOf(&["stock:deduct"]);
/// A restock is the order service's compensation for a cancelled order, or a stock
/// correction by someone who may edit the catalogue.
const RESTOCK: Access = Access::AnyOf(&["stock:deduct", "inventory:write"]);
const READ: Access = Access::AnyOf(&["inventory:read"]);

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
    let taking = Taking {
        lines: &[Line {
            product_id: id,
            quantity,
        }],
        how: How::Deduct,
        strategy: Strategy::default(),
        split: Split::default(),
        context: context(Some(order_id), &once),
        told: Vec::new(),
    };
    let answer = match stock::take(write.tx(), taking)? {
        Ok(taken) => taken
            .first()
            .map(|line| Resp::json(status::OK, &DeductedView::new(line, order_id)))
            .ok_or_else(|| ApiError::Internal("a deduct took no line".into())),
        Err(Refusal::NotFound(_)) => Err(not_found(id)),
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
    let taking = Taking {
        lines: &held::lines_of(&request.totals()),
        how: How::Deduct,
        strategy: Strategy::default(),
        split: Split::default(),
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
    let write = match idempotency::begin(call, Some(&once))? {
        Begun::Fresh(write) => write,
        Begun::Replayed(resp) => return Ok(resp),
    };
    let context = context(order_id, &once);
    let answer = match stock::restock(write.tx(), id, quantity, reason, &context)? {
        Restock::Done(product) => Ok(Resp::json(
            status::OK,
            &RestockedView {
                product_id: id,
                stock: product.stock,
                reserved: product.reserved,
                available: product.available,
                restocked: quantity,
                order_id,
                reason,
                allocations: vec![AllocationView {
                    location_id: DEFAULT_LOCATION.to_owned(),
                    quantity,
                }],
            },
        )),
        Restock::NotFound => Err(not_found(id)),
        Restock::TooMuch { stock } => Err(ApiError::Conflict(format!(
            "the stock would exceed {MAX_STOCK} (it is {stock}); nothing was restocked"
        ))),
    };
    write.answer(answer)
}

/// `GET /product/{id}/movements?page&limit`: the ledger, newest first.
fn list_movements(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let query = PageQuery::parse(&call.req.query, "page, limit", |_, _| Ok(false))?;
    let db = call.db()?;
    if products::get(db, id)?.is_none() {
        return Err(not_found(id));
    }
    let (entries, total) = ledger::page(db, id, query.page, query.limit)?;
    let view = MovementPageView {
        items: entries,
        page: query.page,
        limit: query.limit,
        total,
    };
    let links = query.links(&format!("/product/{id}/movements"), total);
    Ok(Resp::json(status::OK, &view).with_header(header::LINK, &links))
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no product with id {id}"))
}
