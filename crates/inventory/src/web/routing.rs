//! A component's routes: method, path pattern, who may call it, and the handler; and the
//! match of a request against them (404, or 405 with the methods the path allows).

use futures::future::LocalBoxFuture;

use crate::web::context::Ctx;
use crate::web::http::{Method, Req, Resp};
use crate::web::problem::ApiError;

/// What answers a route: most handlers answer at once; one that waits on another component
/// (a chained request) returns its future.
#[derive(Clone, Copy)]
pub enum Handler {
    Sync(fn(&Call<'_>) -> Result<Resp, ApiError>),
    Async(for<'c> fn(&'c Call<'c>) -> LocalBoxFuture<'c, Result<Resp, ApiError>>),
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone, uncounted: no token, no rate limit (`/health`).
    Open,
    /// A valid token carrying at least one of these scopes.
    AnyOf(&'static [&'static str]),
}

/// One route of a component: method, path pattern (`/product/{id}`), who may call it.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    pub handler: Handler,
}

/// What a handler gets.
pub struct Call<'a> {
    pub req: &'a Req,
    pub ctx: &'a Ctx,
    pub(crate) params: Vec<(&'static str, &'a str)>,
}

impl<'a> Call<'a> {
    /// A path parameter as it is in the path.
    pub fn param(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The app's database for this request (see `Ctx::db`).
    pub fn db(&self) -> Result<&'a crate::store::Db, ApiError> {
        self.ctx.db()
    }

    /// A path parameter as a positive integer id (`domain::integer_text`: `7`, `7.0`);
    /// anything else is 400.
    pub fn id(&self, name: &str) -> Result<i64, ApiError> {
        match crate::domain::integer_text(self.param(name).unwrap_or("")) {
            Some(id) if id >= 1 => Ok(id),
            _ => Err(ApiError::InvalidRequest(format!(
                "`{name}` must be a positive integer"
            ))),
        }
    }
}

/// Path parameters by name, as byte ranges of the path.
pub(crate) type ParamRanges = Vec<(&'static str, (usize, usize))>;

/// Finds the route for a path and method.
pub(crate) fn match_route<'r>(
    routes: &'r [Route],
    method: Method,
    path: &str,
) -> Result<(&'r Route, ParamRanges), ApiError> {
    let mut allowed = Vec::new();
    for route in routes {
        let Some(params) = match_path(route.path, path) else {
            continue;
        };
        if route.method == method {
            return Ok((route, params));
        }
        allowed.push(route.method.as_str());
    }
    if allowed.is_empty() {
        Err(ApiError::NotFound(format!("no resource at {path}")))
    } else {
        Err(ApiError::MethodNotAllowed(allowed))
    }
}

/// Matches `/product/{id}` against `/product/7`; a trailing slash is not the same path.
fn match_path(pattern: &'static str, path: &str) -> Option<ParamRanges> {
    let mut params = Vec::new();
    let mut pattern_parts = pattern.split('/');
    let mut offset = 0;
    for part in path.split('/') {
        let expected = pattern_parts.next()?;
        match expected.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            Some(name) if !part.is_empty() => params.push((name, (offset, offset + part.len()))),
            Some(_) => return None,
            None if expected == part => {}
            None => return None,
        }
        offset += part.len() + 1;
    }
    pattern_parts.next().is_none().then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::http::status;

    fn ok(_: &Call<'_>) -> Result<Resp, ApiError> {
        Ok(Resp::new(status::OK))
    }

    const ROUTES: &[Route] = &[
        Route {
            method: Method::Get,
            path: "/product/{id}",
            access: Access::Open,
            handler: Handler::Sync(ok),
        },
        Route {
            method: Method::Delete,
            path: "/product/{id}",
            access: Access::Open,
            handler: Handler::Sync(ok),
        },
        Route {
            method: Method::Get,
            path: "/product",
            access: Access::Open,
            handler: Handler::Sync(ok),
        },
    ];

    #[test]
    fn a_path_with_a_parameter_matches_and_captures_it() {
        let (route, params) = match_route(ROUTES, Method::Get, "/product/42").unwrap();
        assert_eq!(route.path, "/product/{id}");
        assert_eq!(params, vec![("id", (9, 11))]);
    }

    #[test]
    fn a_known_path_with_another_method_is_405_listing_the_allowed_ones() {
        match match_route(ROUTES, Method::Put, "/product/42") {
            Err(ApiError::MethodNotAllowed(allow)) => assert_eq!(allow, vec!["GET", "DELETE"]),
            other => panic!("{other:?}", other = other.map(|(r, _)| r.path)),
        }
    }

    #[test]
    fn unknown_paths_are_404() {
        for path in ["/products", "/product/1/x", "/product/", "/"] {
            assert!(
                matches!(
                    match_route(ROUTES, Method::Get, path),
                    Err(ApiError::NotFound(_))
                ),
                "{path}"
            );
        }
    }
}
