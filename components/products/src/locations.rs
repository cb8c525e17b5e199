//! Locations (`/locations`) and a product's stock levels (`/product/{id}/stock`), and the
//! location scope of a product view (`?location_id=` or `?locations=`).

use serde::Serialize;

use inventory::domain::location::LocationId;
use inventory::store::levels::{self, LevelView};
use inventory::store::locations::{self, Location, Outcome};
use inventory::store::moves::{self, Condition};
use inventory::web::guard;
use inventory::web::http::{header, status};
use inventory::web::idempotency;
use inventory::web::paging::{bad_param, PageQuery};
use inventory::{ApiError, Call, Resp};

use crate::conditional::{self, IfMatch};

/// A location's or a level's ETag: its version.
fn tag(version: i64) -> String {
    format!("\"{version}\"")
}

fn location_response(status: u16, location: &Location) -> Resp {
    Resp::json(status, location).with_header(header::ETAG, &tag(location.version))
}

/// A location id in the path: 400 if it could never be one.
fn path_location(call: &Call<'_>, name: &str) -> Result<String, ApiError> {
    let text = call.param(name).unwrap_or("");
    LocationId::new(text.to_owned())
        .map(LocationId::into_string)
        .map_err(|err| ApiError::InvalidRequest(format!("`{name}` {err}")))
}

fn no_location(id: &str) -> ApiError {
    ApiError::NotFound(format!("location {id} does not exist"))
}

/// `POST /locations`.
pub fn create_location(call: &Call<'_>) -> Result<Resp, ApiError> {
    let new = guard::new_location(&call.req.body)?;
    let write = idempotency::unkeyed(call)?;
    let answer = match locations::create(write.tx(), &new)? {
        locations::Created::Done(location) => {
            let path = format!("/locations/{}", location.id);
            Ok(location_response(status::CREATED, &location).with_header(header::LOCATION, &path))
        }
        locations::Created::Exists => Err(ApiError::Conflict(format!(
            "a location with id {} exists",
            new.id.as_str()
        ))),
    };
    write.answer(answer)
}

/// `GET /locations/{id}`.
pub fn get_location(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = path_location(call, "location_id")?;
    let location = locations::get(call.db()?, &id)?.ok_or_else(|| no_location(&id))?;
    Ok(location_response(status::OK, &location))
}

#[derive(Serialize)]
struct LocationPage {
    items: Vec<Location>,
    page: i64,
    limit: i64,
    total: i64,
}

/// `GET /locations?page&limit&active`.
pub fn list_locations(call: &Call<'_>) -> Result<Resp, ApiError> {
    let mut active = None;
    let query = PageQuery::parse(&call.req.query, "page, limit, active", |key, value| {
        if key != "active" {
            return Ok(false);
        }
        active = Some(match value {
            "true" => true,
            "false" => false,
            _ => return Err(bad_param(key, "must be true or false")),
        });
        Ok(true)
    })?;
    let (items, total) = locations::list(call.db()?, active, query.page, query.limit)?;
    let links = query.links("/locations", total);
    let view = LocationPage {
        items,
        page: query.page,
        limit: query.limit,
        total,
    };
    Ok(Resp::json(status::OK, &view).with_header(header::LINK, &links))
}

/// What a refused change or delete of a location answers.
fn refused<T>(id: &str, outcome: Outcome<T>) -> ApiError {
    match outcome {
        Outcome::NotFound => no_location(id),
        Outcome::Stale(current) => ApiError::PreconditionFailed(format!(
            "the location has changed: its current ETag is {}",
            tag(current.version)
        )),
        Outcome::Default => ApiError::Conflict(
            "the default location is never deactivated or deleted; nothing was changed".into(),
        ),
        Outcome::Stocked(levels) => ApiError::Conflict(format!(
            "{levels} level(s) at the location still have stock: transfer or count it out \
             first; nothing was changed"
        )),
        Outcome::Held(units) => ApiError::Conflict(format!(
            "active holds have {units} unit(s) at the location: let them end first; nothing \
             was changed"
        )),
        Outcome::Done(_) => ApiError::Internal("a done change was refused".into()),
    }
}

/// `PATCH /locations/{id}`.
pub fn update_location(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = path_location(call, "location_id")?;
    let patch = guard::location_patch(&call.req.body)?;
    let expected = conditional::if_match(call.req)?.versions();
    let write = idempotency::unkeyed(call)?;
    let answer = match locations::update(write.tx(), &id, &patch, expected.as_deref())? {
        Outcome::Done(location) => Ok(location_response(status::OK, &location)),
        other => Err(refused(&id, other)),
    };
    write.answer(answer)
}

/// `DELETE /locations/{id}`.
pub fn delete_location(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = path_location(call, "location_id")?;
    let expected = conditional::if_match(call.req)?.versions();
    let write = idempotency::unkeyed(call)?;
    let answer = match locations::delete(write.tx(), &id, expected.as_deref())? {
        Outcome::Done(()) => Ok(Resp::new(status::NO_CONTENT)),
        other => Err(refused(&id, other)),
    };
    write.answer(answer)
}

fn no_product(id: i64) -> ApiError {
    ApiError::NotFound(format!("product {id} does not exist"))
}

fn level_response(status: u16, level: &LevelView) -> Resp {
    Resp::json(status, level).with_header(header::ETAG, &tag(level.version))
}

#[derive(Serialize)]
struct LevelList {
    product_id: i64,
    items: Vec<LevelView>,
}

/// `GET /product/{id}/stock`: every level, inactive locations' too.
pub fn list_levels(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let db = call.db()?;
    if inventory::store::products::get(db, id)?.is_none() {
        return Err(no_product(id));
    }
    let items = levels::views(db, id, None)?;
    Ok(Resp::json(
        status::OK,
        &LevelList {
            product_id: id,
            items,
        },
    ))
}

/// `GET /product/{id}/stock/{location_id}`.
pub fn get_level(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let location = path_location(call, "location_id")?;
    let level = levels::views(call.db()?, id, Some(&location))?
        .into_iter()
        .next()
        .ok_or_else(|| {
            ApiError::NotFound(format!("product {id} has no stock level at {location}"))
        })?;
    Ok(level_response(status::OK, &level))
}

/// `PUT /product/{id}/stock/{location_id}` `{"stock"}`: a count, compare-and-set.
pub fn put_level(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let location = path_location(call, "location_id")?;
    let count = guard::level_count(&call.req.body)?;
    let condition = match (
        conditional::if_match(call.req)?,
        conditional::if_none_match_any(call.req),
    ) {
        (IfMatch::Versions(versions), false) => Condition::Versions(versions),
        (IfMatch::Absent, true) => Condition::Absent,
        (IfMatch::Absent | IfMatch::Any, false) => {
            return Err(ApiError::PreconditionRequired(
                "setting a level needs If-Match with its ETag (or If-None-Match: * to create \
                 it), so deducts made since you read it are not undone"
                    .into(),
            ))
        }
        // The level must exist and must not: no level is both (RFC 9110 §13.2.2).
        (IfMatch::Any | IfMatch::Versions(_), true) => {
            return Err(ApiError::PreconditionFailed(
                "If-Match and If-None-Match: * cannot both hold; nothing was changed".into(),
            ))
        }
    };
    let write = idempotency::unkeyed(call)?;
    let answer = match moves::count(write.tx(), id, &location, count.stock.get(), &condition)? {
        moves::Outcome::Done(level) => Ok(level_response(status::OK, &level)),
        moves::Outcome::Created(level) => Ok(level_response(status::CREATED, &level)
            .with_header(header::LOCATION, &format!("/product/{id}/stock/{location}"))),
        moves::Outcome::NotFound(None) => Err(no_product(id)),
        moves::Outcome::NotFound(Some(location)) => Err(no_location(&location)),
        moves::Outcome::Stale(Some(level)) => Err(ApiError::PreconditionFailed(format!(
            "the level has changed: its current ETag is {}",
            tag(level.version)
        ))),
        moves::Outcome::Stale(None) => Err(ApiError::PreconditionFailed(
            "the product has no level there: create it with If-None-Match: *".into(),
        )),
        other => Err(ApiError::Internal(format!("a count ended as {other:?}"))),
    };
    write.answer(answer)
}

/// `DELETE /product/{id}/stock/{location_id}`: an empty level with no active hold.
pub fn delete_level(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let location = path_location(call, "location_id")?;
    let write = idempotency::unkeyed(call)?;
    let answer = match moves::remove(write.tx(), id, &location)? {
        moves::Outcome::Done(()) => Ok(Resp::new(status::NO_CONTENT)),
        moves::Outcome::NotFound(None) => Err(no_product(id)),
        moves::Outcome::NotFound(Some(_)) => Err(ApiError::NotFound(format!(
            "product {id} has no stock level at {location}"
        ))),
        moves::Outcome::Busy { stock, reserved } => Err(ApiError::Conflict(format!(
            "the level has {stock} in stock and {reserved} held: only an empty level with no \
             active hold is deleted; nothing was changed"
        ))),
        other => Err(ApiError::Internal(format!("a removal ended as {other:?}"))),
    };
    write.answer(answer)
}

/// The locations a product view is narrowed to: `location_id=x` or `locations=x,y` (not
/// both), each existing and active (else 400). `None` when neither is given.
pub fn scope(
    call: &Call<'_>,
    location_id: Option<&str>,
    list: Option<&str>,
) -> Result<Option<Vec<String>>, ApiError> {
    let named: Vec<&str> = match (location_id, list) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "give `location_id` or `locations`, not both".into(),
            ))
        }
        (Some(one), None) => vec![one],
        (None, Some(list)) => list.split(',').collect(),
    };
    let mut ids: Vec<String> = Vec::with_capacity(named.len());
    for name in named {
        let id = LocationId::new(name.to_owned())
            .map_err(|err| bad_param("locations", &format!("{name:?} {err}")))?
            .into_string();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let usable = locations::active_of(call.db()?, &ids)?;
    if let Some(unusable) = ids.iter().find(|id| !usable.contains(*id)) {
        return Err(ApiError::InvalidRequest(format!(
            "location {unusable} does not exist or is inactive"
        )));
    }
    Ok(Some(ids))
}
