//! The products routes and their handlers.

use inventory::http::{header, Method};
use inventory::products::{self, ListFilter, WriteOutcome};
use inventory::{db::Db, guard, query, ApiError, Call, Resp, Route};

use crate::dto::{HealthView, ProductPageView, ProductView};

const READ: Option<&str> = Some("inventory:read");
const WRITE: Option<&str> = Some("inventory:write");

pub const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        path: "/health",
        scope: None,
        handler: get_health,
    },
    Route {
        method: Method::Get,
        path: "/product",
        scope: READ,
        handler: list_products,
    },
    Route {
        method: Method::Post,
        path: "/product",
        scope: WRITE,
        handler: create_product,
    },
    Route {
        method: Method::Get,
        path: "/product/{id}",
        scope: READ,
        handler: get_product,
    },
    Route {
        method: Method::Put,
        path: "/product/{id}",
        scope: WRITE,
        handler: update_product,
    },
    Route {
        method: Method::Patch,
        path: "/product/{id}",
        scope: WRITE,
        handler: update_product,
    },
    Route {
        method: Method::Delete,
        path: "/product/{id}",
        scope: WRITE,
        handler: delete_product,
    },
];

const DEFAULT_LIMIT: i64 = 10;
const MAX_LIMIT: i64 = 100;
/// Beyond this a page number is a mistake, and `page * limit` must not overflow.
const MAX_PAGE: i64 = 10_000_000;
const MAX_QUERY_CHARS: usize = 200;

fn get_health(_call: &Call<'_>) -> Result<Resp, ApiError> {
    let db = Db::open().map_err(|err| ApiError::Unavailable(format!("{err:?}")))?;
    db.query("SELECT 1", &[])
        .map_err(|err| ApiError::Unavailable(format!("{err:?}")))?;
    Ok(Resp::json(200, &HealthView { status: "ok" }))
}

fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

fn product_response(status: u16, product: products::Product) -> Resp {
    let tag = etag(product.version);
    Resp::json(status, &ProductView::from(product)).with_header(header::ETAG, &tag)
}

fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("product {id} does not exist"))
}

fn create_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let new = guard::new_product(&call.req.body)?;
    let product = products::create(&Db::open()?, &new)?;
    let location = format!("/product/{}", product.id);
    Ok(product_response(201, product).with_header(header::LOCATION, &location))
}

fn get_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let product = products::get(&Db::open()?, id)?.ok_or_else(|| not_found(id))?;
    if let Some(tags) = call.req.header(header::IF_NONE_MATCH) {
        if etag_list_matches(tags, product.version) {
            return Ok(Resp::new(304).with_header(header::ETAG, &etag(product.version)));
        }
    }
    Ok(product_response(200, product))
}

fn update_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let patch = guard::product_patch(&call.req.body)?;
    let expected = if_match_versions(call)?;
    match products::update(&Db::open()?, id, &patch, expected.as_deref())? {
        WriteOutcome::Done(product) => Ok(product_response(200, product)),
        WriteOutcome::NotFound => Err(not_found(id)),
        WriteOutcome::VersionMismatch { current } => Err(stale(current)),
    }
}

fn delete_product(call: &Call<'_>) -> Result<Resp, ApiError> {
    let id = call.id("id")?;
    let expected = if_match_versions(call)?;
    match products::delete(&Db::open()?, id, expected.as_deref())? {
        WriteOutcome::Done(()) => Ok(Resp::new(204)),
        WriteOutcome::NotFound => Err(not_found(id)),
        WriteOutcome::VersionMismatch { current } => Err(stale(current)),
    }
}

fn stale(current: i64) -> ApiError {
    ApiError::PreconditionFailed(format!(
        "the product has changed: its current ETag is {}",
        etag(current)
    ))
}

/// The versions `If-Match` accepts: `None` when absent or `*`. Tags that are not ours
/// (weak, or not a version) match nothing, so a stale or foreign tag is a 412.
fn if_match_versions(call: &Call<'_>) -> Result<Option<Vec<i64>>, ApiError> {
    let Some(header) = call.req.header(header::IF_MATCH) else {
        return Ok(None);
    };
    if header.trim() == "*" {
        return Ok(None);
    }
    Ok(Some(
        header
            .split(',')
            .filter_map(|tag| strong_version(tag.trim()))
            .collect(),
    ))
}

fn strong_version(tag: &str) -> Option<i64> {
    tag.strip_prefix('"')?.strip_suffix('"')?.parse().ok()
}

/// `If-None-Match` uses weak comparison: `W/"4"` matches version 4 too.
fn etag_list_matches(header: &str, version: i64) -> bool {
    header.split(',').map(str::trim).any(|tag| {
        tag == "*" || strong_version(tag.strip_prefix("W/").unwrap_or(tag)) == Some(version)
    })
}

/// `GET /product?page&limit&category_id&q&in_stock`.
fn list_products(call: &Call<'_>) -> Result<Resp, ApiError> {
    let pairs = query::parse(&call.req.query).ok_or_else(|| {
        ApiError::InvalidRequest("the query string is not valid percent-encoded UTF-8".into())
    })?;
    let mut page = 1;
    let mut limit = DEFAULT_LIMIT;
    let mut filter = ListFilter::default();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in &pairs {
        if seen.contains(&key.as_str()) {
            return Err(bad_param(key, "may be given only once"));
        }
        seen.push(key);
        match key.as_str() {
            "page" => page = int_param(key, value, 1, MAX_PAGE)?,
            "limit" => limit = int_param(key, value, 1, MAX_LIMIT)?,
            "category_id" => filter.category_id = Some(int_param(key, value, 1, i64::MAX)?),
            "q" => {
                if value.chars().count() > MAX_QUERY_CHARS {
                    return Err(bad_param(key, "must be at most 200 characters"));
                }
                filter.name_contains = Some(value.clone());
            }
            "in_stock" => {
                filter.in_stock = Some(match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(bad_param(key, "must be true or false")),
                })
            }
            _ => {
                return Err(bad_param(
                    key,
                    "is not a known parameter (page, limit, category_id, q, in_stock)",
                ))
            }
        }
    }
    let (items, total) = products::list(&Db::open()?, &filter, page, limit)?;
    let links = page_links(&pairs, page, limit, total);
    let view = ProductPageView {
        items: items.into_iter().map(ProductView::from).collect(),
        page,
        limit,
        total,
    };
    Ok(Resp::json(200, &view).with_header(header::LINK, &links))
}

fn bad_param(key: &str, message: &str) -> ApiError {
    ApiError::InvalidRequest(format!("query parameter `{key}` {message}"))
}

fn int_param(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    let ok = value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty();
    match value.parse::<i64>() {
        Ok(n) if ok && (min..=max).contains(&n) => Ok(n),
        _ => Err(bad_param(
            key,
            &format!("must be an integer from {min} to {max}"),
        )),
    }
}

/// RFC 8288 links to the first, previous, next and last pages, keeping the filters.
fn page_links(pairs: &[(String, String)], page: i64, limit: i64, total: i64) -> String {
    let last = ((total + limit - 1) / limit).max(1);
    let filters: String = pairs
        .iter()
        .filter(|(k, _)| k != "page" && k != "limit")
        .map(|(k, v)| format!("&{}={}", query::encode(k), query::encode(v)))
        .collect();
    let link =
        |p: i64, rel: &str| format!("</product?page={p}&limit={limit}{filters}>; rel=\"{rel}\"");
    let mut links = vec![link(1, "first")];
    if page > 1 {
        links.push(link((page - 1).min(last), "prev"));
    }
    if page < last {
        links.push(link(page + 1, "next"));
    }
    links.push(link(last, "last"));
    links.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        assert!(etag_list_matches("\"4\"", 4));
        assert!(etag_list_matches("W/\"4\"", 4));
        assert!(etag_list_matches("\"1\", \"4\"", 4));
        assert!(etag_list_matches("*", 4));
        assert!(!etag_list_matches("\"3\"", 4));
        assert!(!etag_list_matches("4", 4));
    }

    #[test]
    fn links_keep_filters_and_stop_at_the_ends() {
        let pairs = vec![
            ("q".to_string(), "blue mug".to_string()),
            ("page".to_string(), "2".to_string()),
        ];
        let links = page_links(&pairs, 2, 10, 25);
        assert!(
            links.contains("</product?page=1&limit=10&q=blue%20mug>; rel=\"first\""),
            "{links}"
        );
        assert!(
            links.contains("rel=\"prev\"") && links.contains("rel=\"next\""),
            "{links}"
        );
        assert!(
            links.contains("</product?page=3&limit=10&q=blue%20mug>; rel=\"last\""),
            "{links}"
        );
        let single = page_links(&[], 1, 10, 0);
        assert!(
            !single.contains("prev") && !single.contains("next"),
            "{single}"
        );
    }

    #[test]
    fn integer_parameters_are_strict() {
        assert_eq!(int_param("page", "3", 1, 10).unwrap(), 3);
        for bad in [
            "0",
            "11",
            "-1",
            "+1",
            "1.0",
            "",
            "x",
            "99999999999999999999",
        ] {
            assert!(int_param("page", bad, 1, 10).is_err(), "{bad}");
        }
    }
}
