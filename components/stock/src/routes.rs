//! The stock routes and their handlers.

use inventory::domain::MAX_STOCK;
use inventory::store::stock::{self, BatchOutcome, Context, StockOutcome};
use inventory::store::{ledger, products, Db};
use inventory::web::guard;
use inventory::web::http::{header, status, Method};
use inventory::web::idempotency::Idempotent;
use inventory::web::paging::PageQuery;
use inventory::{Access, ApiError, Call, Handler, Resp, Route};

use crate::dto::{
    BatchDeductedView, DeductedLineView, DeductedView, MovementPageView, MovementView,
    RestockedView,
};

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

/// Runs a stock write once for its key; its ledger rows name `order_id` and the key.
fn run_keyed(
    call: &Call<'_>,
    once: &Idempotent,
    order_id: Option<&str>,
    operation: impl FnOnce(&Db, &Context<'_>) -> Result<Resp, ApiError>,
) -> Result<Resp, ApiError> {
    once.run(call, |db| {
        let context = Context {
            order_id,
            idempotency_key: Some(once.key()),
        };
        operation(db, &context)
    })
}

/// `POST /product/{id}/deduct` `{"quantity", "order_id"}`.
fn deduct_stock(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let once = Idempotent::required(call, &format!("/product/{id}/deduct"))?;
    let request = guard::deduct(&call.req.body)?;
    let (quantity, order_id) = (request.quantity.get(), request.order_id.as_str());
    run_keyed(
        call,
        &once,
        Some(order_id),
        |db, context| match stock::deduct(db, id, quantity, context)? {
            StockOutcome::Done(product) => Ok(Resp::json(
                status::OK,
                &DeductedView {
                    product_id: id,
                    stock: product.stock,
                    reserved: product.reserved,
                    available: product.available,
                    deducted: quantity,
                    order_id,
                },
            )),
            StockOutcome::NotFound => Err(not_found(id)),
            StockOutcome::Refused { current } => Err(ApiError::InsufficientStock {
                requested: quantity,
                available: current,
            }),
        },
    )
}

/// `POST /stock/deduct` `{"order_id", "lines": [{"product_id", "quantity"}]}`: all or none.
fn deduct_stock_batch(call: &Call<'_>) -> Result<Resp, ApiError> {
    let once = Idempotent::required(call, "/stock/deduct")?;
    let request = guard::batch_deduct(&call.req.body)?;
    let order_id = request.order_id.as_str();
    let totals = request.totals();
    run_keyed(
        call,
        &once,
        Some(order_id),
        |db, context| match stock::deduct_batch(db, &totals, context)? {
            BatchOutcome::Done(done) => {
                let lines = done
                    .into_iter()
                    .zip(&totals)
                    .map(|(product, total)| DeductedLineView {
                        product_id: product.id,
                        stock: product.stock,
                        reserved: product.reserved,
                        available: product.available,
                        deducted: total.quantity,
                    })
                    .collect();
                Ok(Resp::json(
                    status::OK,
                    &BatchDeductedView { order_id, lines },
                ))
            }
            BatchOutcome::NotFound(ids) => Err(ApiError::unknown_products(&ids, "deducted")),
            BatchOutcome::Short(lines) => Err(ApiError::InsufficientStockLines(lines)),
        },
    )
}

/// `POST /product/{id}/restock` `{"quantity", "order_id"?, "reason"?}`.
fn restock_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let once = Idempotent::required(call, &format!("/product/{id}/restock"))?;
    let request = guard::restock(&call.req.body)?;
    let quantity = request.quantity.get();
    let order_id = request.order_id.as_ref().map(|o| o.as_str());
    let reason = request.reason.as_str();
    run_keyed(call, &once, order_id, |db, context| {
        match stock::restock(db, id, quantity, reason, context)? {
            StockOutcome::Done(product) => Ok(Resp::json(
                status::OK,
                &RestockedView {
                    product_id: id,
                    stock: product.stock,
                    reserved: product.reserved,
                    available: product.available,
                    restocked: quantity,
                    order_id,
                    reason,
                },
            )),
            StockOutcome::NotFound => Err(not_found(id)),
            StockOutcome::Refused { current } => Err(ApiError::Conflict(format!(
                "the stock would exceed {MAX_STOCK} (it is {current}); nothing was restocked"
            ))),
        }
    })
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
        items: entries.into_iter().map(MovementView::from).collect(),
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
