//! Paged collections: `page` and `limit` query parameters and RFC 8288 `Link` headers.

use crate::web::problem::ApiError;
use crate::web::query;

pub const DEFAULT_LIMIT: i64 = 10;
pub const MAX_LIMIT: i64 = 100;
/// Far past any real collection; keeps `(page - 1) * limit` well inside `i64`.
pub const MAX_PAGE: i64 = 10_000_000;

/// The query of a paged collection: `page`, `limit` and the collection's own parameters,
/// each given at most once.
pub struct PageQuery {
    pub page: i64,
    pub limit: i64,
    /// Every parameter as decoded, for the `Link` header to keep the filters.
    pub pairs: Vec<(String, String)>,
}

impl PageQuery {
    /// Parses `query`. `other` takes each parameter that is not `page` or `limit` and answers
    /// whether it knows it; an unknown one is a 400 listing `known`.
    pub fn parse(
        query: &str,
        known: &str,
        mut other: impl FnMut(&str, &str) -> Result<bool, ApiError>,
    ) -> Result<Self, ApiError> {
        let pairs = query::parse(query).ok_or_else(|| {
            ApiError::InvalidRequest("the query string is not valid percent-encoded UTF-8".into())
        })?;
        let mut page = 1;
        let mut limit = DEFAULT_LIMIT;
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in &pairs {
            if seen.contains(&key.as_str()) {
                return Err(bad_param(key, "may be given only once"));
            }
            seen.push(key);
            match key.as_str() {
                "page" => page = int_param(key, value, 1, MAX_PAGE)?,
                "limit" => limit = int_param(key, value, 1, MAX_LIMIT)?,
                _ if other(key, value)? => {}
                _ => {
                    return Err(bad_param(
                        key,
                        &format!("is not a known parameter ({known})"),
                    ))
                }
            }
        }
        Ok(Self { page, limit, pairs })
    }

    /// The `Link` header for the collection at `path` holding `total` items.
    pub fn links(&self, path: &str, total: i64) -> String {
        page_links(path, &self.pairs, self.page, self.limit, total)
    }
}

/// A 400 naming the query parameter.
pub fn bad_param(key: &str, message: &str) -> ApiError {
    ApiError::InvalidRequest(format!("query parameter `{key}` {message}"))
}

/// An integer query parameter from `min` to `max` (`domain::integer_text`: `3`, `3.0`).
pub fn int_param(key: &str, value: &str, min: i64, max: i64) -> Result<i64, ApiError> {
    match crate::domain::integer_text(value) {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad_param(
            key,
            &format!("must be an integer from {min} to {max}"),
        )),
    }
}

/// RFC 8288 links (for the collection at `path`) to the first, previous, next and last pages, keeping the filters.
pub fn page_links(
    path: &str,
    pairs: &[(String, String)],
    page: i64,
    limit: i64,
    total: i64,
) -> String {
    let last = ((total + limit - 1) / limit).max(1);
    let filters: String = pairs
        .iter()
        .filter(|(k, _)| k != "page" && k != "limit")
        .map(|(k, v)| format!("&{}={}", query::encode(k), query::encode(v)))
        .collect();
    let link =
        |p: i64, rel: &str| format!("<{path}?page={p}&limit={limit}{filters}>; rel=\"{rel}\"");
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
    fn links_keep_filters_and_stop_at_the_ends() {
        let pairs = vec![
            ("q".to_string(), "blue mug".to_string()),
            ("page".to_string(), "2".to_string()),
        ];
        let links = page_links("/product", &pairs, 2, 10, 25);
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
        let single = page_links("/product", &[], 1, 10, 0);
        assert!(
            !single.contains("prev") && !single.contains("next"),
            "{single}"
        );
    }

    #[test]
    fn integer_parameters_are_whole_numbers_in_range() {
        for good in ["3", "03", "3.0", "3e0"] {
            assert_eq!(int_param("page", good, 1, 10).unwrap(), 3, "{good}");
        }
        for bad in [
            "0",
            "11",
            "-1",
            "+1",
            "1.5",
            "",
            "x",
            "99999999999999999999",
        ] {
            assert!(int_param("page", bad, 1, 10).is_err(), "{bad}");
        }
    }
}
