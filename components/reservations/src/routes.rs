//! The reservations routes and their handlers.

use inventory::domain::stock::OrderId;
use inventory::domain::FieldError;
use inventory::store::ledger::Context;
use inventory::store::reservations::{self, CommitOutcome, EndOutcome, ListFilter, Status};
use inventory::store::stock::{self, Refusal};
use inventory::web::guard;
use inventory::web::http::{header, status, Method};
use inventory::web::idempotency::{self, Begun, Idempotent};
use inventory::web::paging::{bad_param, PageQuery};
use inventory::{Access, ApiError, Call, Handler, Resp, Route};

use crate::dto::{CommittedView, HoldPageView, HoldView};

const HOLD: Access = Access::AnyOf(&["stock:deduct"]);
/// Reading a hold: the order service, or anyone who may read the catalogue.
const READ: Access = Access::AnyOf(&["stock:deduct", "inventory:read"]);

pub const ROUTES: &[Route] = &[
    Route {
        method: Method::Post,
        path: "/reservations",
        access: HOLD,
        handler: Handler::Sync(create_reservation),
    },
    Route {
        method: Method::Get,
        path: "/reservations",
        access: READ,
        handler: Handler::Sync(list_reservations),
    },
    Route {
        method: Method::Get,
        path: "/reservations/{id}",
        access: READ,
        handler: Handler::Sync(get_reservation),
    },
    Route {
        method: Method::Patch,
        path: "/reservations/{id}",
        access: HOLD,
        handler: Handler::Sync(extend_reservation),
    },
    Route {
        method: Method::Post,
        path: "/reservations/{id}/commit",
        access: HOLD,
        handler: Handler::Sync(commit_reservation),
    },
    Route {
        method: Method::Post,
        path: "/reservations/{id}/release",
        access: HOLD,
        handler: Handler::Sync(release_reservation),
    },
];

/// `POST /reservations` `{"order_id", "lines", "ttl_seconds"?}`: every line held, or none.
fn create_reservation(call: &Call<'_>) -> Result<Resp, ApiError> {
    let once = Idempotent::required(call, "/reservations")?;
    let request = guard::new_reservation(&call.req.body)?;
    let write = match idempotency::begin(call, Some(&once))? {
        Begun::Fresh(write) => write,
        Begun::Replayed(resp) => return Ok(resp),
    };
    let answer = match reservations::create(write.tx(), &request)? {
        Ok(hold) => {
            let location = format!("/reservations/{}", hold.id);
            Ok(Resp::json(status::CREATED, &HoldView::from(&hold))
                .with_header(header::LOCATION, &location))
        }
        Err(Refusal::NotFound(ids)) => Err(ApiError::unknown_products(&ids, "held")),
        Err(Refusal::Locations(refused)) => Err(ApiError::unusable_locations(
            &refused,
            &stock::wants(&request.lines),
            false,
        )),
        Err(Refusal::Short(lines)) => Err(ApiError::InsufficientStockLines(lines)),
    };
    write.answer(answer)
}

/// `GET /reservations/{id}`.
fn get_reservation(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = hold_id(call)?;
    let hold = reservations::get(call.db()?, id)?.ok_or_else(|| not_found(id))?;
    Ok(Resp::json(status::OK, &HoldView::from(&hold)))
}

/// `GET /reservations?order_id&status&page&limit`: newest first.
fn list_reservations(call: &Call<'_>) -> Result<Resp, ApiError> {
    let mut filter = ListFilter::default();
    let query = PageQuery::parse(
        &call.req.query,
        "page, limit, order_id, status",
        |key, value| {
            match key {
                "order_id" => {
                    let order_id = OrderId::new(value.to_owned())
                        .map_err(|err| bad_param(key, &err.to_string()))?;
                    filter.order_id = Some(order_id.as_str().to_owned());
                }
                "status" => filter.status = Some(parse_status(key, value)?),
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    let (holds, total) = reservations::list(call.db()?, &filter, query.page, query.limit)?;
    let links = query.links("/reservations", total);
    let view = HoldPageView {
        items: holds.iter().map(HoldView::from).collect(),
        page: query.page,
        limit: query.limit,
        total,
    };
    Ok(Resp::json(status::OK, &view).with_header(header::LINK, &links))
}

fn parse_status(key: &str, value: &str) -> Result<Status, ApiError> {
    Status::parse(value)
        .ok_or_else(|| bad_param(key, "must be active, committed, released or expired"))
}

/// `POST /reservations/{id}/commit` with no body (everything held) or `{"lines"}` (fewer
/// units; the rest is released). A second commit gets the first's answer.
fn commit_reservation(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = hold_id(call)?;
    let once = Idempotent::optional(call, &format!("/reservations/{id}/commit"))?;
    let partial = if call.req.body.is_empty() {
        None
    } else {
        Some(guard::partial_commit(&call.req.body)?)
    };
    let totals = partial.and_then(|p| p.totals());
    let write = match idempotency::begin(call, once.as_ref())? {
        Begun::Fresh(write) => write,
        Begun::Replayed(resp) => return Ok(resp),
    };
    let context = Context {
        idempotency_key: once.as_ref().map(Idempotent::key),
        ..Context::default()
    };
    let answer = match reservations::commit(write.tx(), id, totals.as_deref(), &context)? {
        CommitOutcome::Committed { hold, lines } => {
            let resp = Resp::json(status::OK, &CommittedView::new(&hold, &lines));
            let body = String::from_utf8_lossy(&resp.body);
            reservations::keep_commit_answer(write.tx(), id, &body)?;
            Ok(resp)
        }
        CommitOutcome::AlreadyCommitted(answer) => Ok(idempotency::answered(status::OK, answer)),
        CommitOutcome::Inactive(status) => Err(inactive(status)),
        CommitOutcome::NotFound => Err(not_found(id)),
        CommitOutcome::NotHeld(problems) => Err(ApiError::Validation(
            problems
                .into_iter()
                .map(|problem| FieldError::new("lines", problem))
                .collect(),
        )),
        CommitOutcome::Short(lines) => Err(ApiError::InsufficientStockLines(lines)),
        CommitOutcome::Gone(product_id) => Err(ApiError::Conflict(format!(
            "product {product_id} of this reservation no longer exists: commit the other \
             lines, or release it"
        ))),
    };
    write.answer(answer)
}

/// `POST /reservations/{id}/release`: the units are available again. Releasing a released or
/// expired hold changes nothing.
fn release_reservation(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = hold_id(call)?;
    let once = Idempotent::optional(call, &format!("/reservations/{id}/release"))?;
    let write = match idempotency::begin(call, once.as_ref())? {
        Begun::Fresh(write) => write,
        Begun::Replayed(resp) => return Ok(resp),
    };
    let answer = ended(id, reservations::release(write.tx(), id)?);
    write.answer(answer)
}

/// `PATCH /reservations/{id}` `{"ttl_seconds"}`: an active hold now expires that long from
/// now.
fn extend_reservation(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = hold_id(call)?;
    let once = Idempotent::optional(call, &format!("/reservations/{id}"))?;
    let extension = guard::extension(&call.req.body)?;
    let write = match idempotency::begin(call, once.as_ref())? {
        Begun::Fresh(write) => write,
        Begun::Replayed(resp) => return Ok(resp),
    };
    let answer = ended(id, reservations::extend(write.tx(), id, extension.ttl)?);
    write.answer(answer)
}

fn ended(id: &str, outcome: EndOutcome) -> Result<Resp, ApiError> {
    match outcome {
        EndOutcome::Done(hold) => Ok(Resp::json(status::OK, &HoldView::from(&hold))),
        EndOutcome::Inactive(status) => Err(inactive(status)),
        EndOutcome::NotFound => Err(not_found(id)),
    }
}

/// The `{id}` of the path: a hold's id, or 400.
fn hold_id<'a>(call: &Call<'a>) -> Result<&'a str, ApiError> {
    let id = call.param("id").unwrap_or_default();
    if reservations::is_id(id) {
        Ok(id)
    } else {
        Err(ApiError::InvalidRequest(
            "`id` must be a reservation id (`res_` and 32 hexadecimal digits)".into(),
        ))
    }
}

fn inactive(status: Status) -> ApiError {
    ApiError::ReservationInactive {
        status: status.as_str(),
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no reservation {id}"))
}
