//! HTTP routing with Spin's semantics: exact routes, `:name` segments, a trailing `/...`
//! wildcard, and the most specific route winning whatever the manifest's order.

use std::cmp::Ordering;

use anyhow::{bail, ensure, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Exact(String),
    Param(String),
}

/// One route of the manifest, parsed.
#[derive(Debug, Clone)]
pub struct Route {
    /// The route as written in the manifest (`/product/...`).
    raw: String,
    segments: Vec<Segment>,
    wildcard: bool,
    /// Index of the component this route serves.
    pub component: usize,
}

impl Route {
    pub fn parse(raw: &str, component: usize) -> Result<Self> {
        ensure!(raw.starts_with('/'), "route `{raw}` must start with `/`");
        let trimmed = raw.trim_end_matches('/');
        let (body, wildcard) = match trimmed.strip_suffix("/...") {
            Some(body) => (body, true),
            None if trimmed == "..." => ("", true),
            None => (trimmed, false),
        };
        let mut segments = Vec::new();
        for part in body.split('/').filter(|s| !s.is_empty()) {
            if part.contains("...") {
                bail!("route `{raw}`: `...` may only end a route, as `/...`");
            }
            match part.strip_prefix(':') {
                Some(name) => {
                    ensure!(
                        !name.is_empty(),
                        "route `{raw}`: a `:` segment needs a name"
                    );
                    segments.push(Segment::Param(name.to_owned()));
                }
                None => segments.push(Segment::Exact(part.to_owned())),
            }
        }
        Ok(Self {
            raw: raw.to_owned(),
            segments,
            wildcard,
            component,
        })
    }

    /// The route as written in the manifest.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The route as Spin reports it in `spin-matched-route`: one trailing `/` removed.
    pub fn based(&self) -> &str {
        match self.raw.strip_suffix('/') {
            Some(based) if !self.raw.ends_with("//") => based,
            _ => &self.raw,
        }
    }

    /// The route without its wildcard (`/product/...` -> `/product`), as Spin reports it.
    pub fn without_wildcard(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            out.push('/');
            match segment {
                Segment::Exact(s) => out.push_str(s),
                Segment::Param(name) => {
                    out.push(':');
                    out.push_str(name);
                }
            }
        }
        out
    }

    fn matches<'a>(&'a self, path: &'a str) -> Option<RouteMatch<'a>> {
        // Spin ignores leading and trailing slashes when matching.
        let mut rest = path.trim_start_matches('/');
        let mut after_slash = false;
        let mut params = Vec::new();
        for segment in &self.segments {
            let (part, tail, slash) = match rest.split_once('/') {
                Some((part, tail)) => (part, tail, true),
                None => (rest, "", false),
            };
            if part.is_empty() {
                return None;
            }
            match segment {
                Segment::Exact(s) if s == part => {}
                Segment::Exact(_) => return None,
                Segment::Param(name) => params.push((name.as_str(), part)),
            }
            rest = tail;
            after_slash = slash;
        }
        let path_info = if !self.wildcard {
            if !rest.trim_matches('/').is_empty() {
                return None;
            }
            String::new()
        } else if self.segments.is_empty() {
            path.to_owned()
        } else if after_slash {
            // `/static/` -> `/`, `/static/a/b/` -> `/a/b/`.
            format!("/{rest}")
        } else {
            String::new()
        };
        Some(RouteMatch {
            route: self,
            params,
            path_info,
        })
    }

    /// Orders routes so that the most specific comes first: position by position, a literal
    /// segment beats a `:name`, which beats the wildcard; a route that ends beats one that
    /// goes on with a wildcard.
    fn specificity(&self, other: &Self) -> Ordering {
        fn rank(route: &Route, index: usize) -> u8 {
            match route.segments.get(index) {
                Some(Segment::Exact(_)) => 3,
                Some(Segment::Param(_)) => 2,
                None if route.wildcard => 0,
                None => 1,
            }
        }
        let len = self.segments.len().max(other.segments.len()) + 1;
        (0..len)
            .map(|i| rank(other, i).cmp(&rank(self, i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

/// A route declared twice: the component `unused` never sees it.
#[derive(Debug)]
pub struct Duplicate {
    pub route: String,
    pub unused: usize,
    pub used: usize,
}

/// What matched a request.
#[derive(Debug)]
pub struct RouteMatch<'a> {
    pub route: &'a Route,
    /// `:name` segments and the values they took.
    pub params: Vec<(&'a str, &'a str)>,
    /// The part of the path after a wildcard route's prefix (`""` for an exact route).
    pub path_info: String,
}

#[derive(Debug, Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// Builds the router from routes in manifest order. As in Spin, of two routes written
    /// identically the later one serves, in the place of the first; the other is reported.
    pub fn new(declared: Vec<Route>) -> (Self, Vec<Duplicate>) {
        let mut routes: Vec<Route> = Vec::with_capacity(declared.len());
        let mut duplicates = Vec::new();
        for route in declared {
            match routes.iter_mut().find(|r| r.raw == route.raw) {
                Some(existing) => {
                    duplicates.push(Duplicate {
                        route: route.raw.clone(),
                        unused: existing.component,
                        used: route.component,
                    });
                    existing.component = route.component;
                }
                None => routes.push(route),
            }
        }
        // A stable sort: of two equally specific routes, the one declared first wins.
        routes.sort_by(Route::specificity);
        (Self { routes }, duplicates)
    }

    pub fn route<'a>(&'a self, path: &'a str) -> Option<RouteMatch<'a>> {
        self.routes.iter().find_map(|route| route.matches(path))
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[&str]) -> Router {
        let routes = routes
            .iter()
            .enumerate()
            .map(|(i, r)| Route::parse(r, i).unwrap())
            .collect();
        Router::new(routes).0
    }

    fn winner(router: &Router, path: &str) -> Option<String> {
        router.route(path).map(|m| m.route.raw().to_owned())
    }

    #[test]
    fn an_exact_route_beats_a_wildcard_on_the_same_path() {
        let r = router(&["/product/...", "/product"]);
        assert_eq!(winner(&r, "/product").as_deref(), Some("/product"));
        assert_eq!(winner(&r, "/product/7").as_deref(), Some("/product/..."));
    }

    #[test]
    fn a_longer_literal_prefix_beats_a_shorter_wildcard_whatever_the_order() {
        let r = router(&["/...", "/product/...", "/product/:id/deduct"]);
        assert_eq!(
            winner(&r, "/product/7/deduct").as_deref(),
            Some("/product/:id/deduct")
        );
        assert_eq!(
            winner(&r, "/product/7/restock").as_deref(),
            Some("/product/...")
        );
        assert_eq!(winner(&r, "/health").as_deref(), Some("/..."));
    }

    #[test]
    fn a_literal_segment_beats_a_parameter_in_the_same_place() {
        let r = router(&["/stock/:id", "/stock/deduct"]);
        assert_eq!(
            winner(&r, "/stock/deduct").as_deref(),
            Some("/stock/deduct")
        );
        assert_eq!(winner(&r, "/stock/9").as_deref(), Some("/stock/:id"));
    }

    #[test]
    fn parameters_are_captured_by_name() {
        let r = router(&["/product/:id/movements"]);
        let m = r.route("/product/42/movements").unwrap();
        assert_eq!(m.params, vec![("id", "42")]);
        assert_eq!(m.path_info, "");
    }

    #[test]
    fn a_wildcard_matches_its_bare_prefix_and_reports_the_tail_as_path_info() {
        let r = router(&["/static/..."]);
        assert_eq!(r.route("/static").unwrap().path_info, "");
        assert_eq!(r.route("/static/a/b.css").unwrap().path_info, "/a/b.css");
        assert!(r.route("/statics").is_none());
    }

    #[test]
    fn an_exact_route_does_not_match_longer_paths() {
        let r = router(&["/health"]);
        assert!(r.route("/health/x").is_none());
        assert!(r.route("/healthz").is_none());
        assert!(r.route("/health").is_some());
    }

    #[test]
    fn the_root_wildcard_matches_everything() {
        let r = router(&["/..."]);
        assert_eq!(r.route("/").unwrap().path_info, "/");
        assert_eq!(r.route("/a/b").unwrap().path_info, "/a/b");
    }

    #[test]
    fn a_parameter_does_not_match_an_empty_segment() {
        let r = router(&["/product/:id"]);
        assert!(r.route("/product/").is_none());
        assert!(r.route("/product").is_none());
    }

    #[test]
    fn of_two_identical_routes_the_later_serves_and_the_earlier_is_reported() {
        let routes = vec![
            Route::parse("/a/...", 0).unwrap(),
            Route::parse("/a/...", 1).unwrap(),
        ];
        let (router, duplicates) = Router::new(routes);
        assert_eq!(router.route("/a/b").unwrap().route.component, 1);
        assert_eq!(duplicates.len(), 1);
        assert_eq!((duplicates[0].unused, duplicates[0].used), (0, 1));
    }

    #[test]
    fn equally_specific_routes_go_to_the_one_declared_first() {
        let r = router(&["/:a/x", "/:b/x"]);
        assert_eq!(r.route("/q/x").unwrap().route.component, 0);
    }

    #[test]
    fn leading_and_trailing_slashes_are_ignored_when_matching() {
        let r = router(&["/health", "/static/..."]);
        assert_eq!(winner(&r, "//health//").as_deref(), Some("/health"));
        assert_eq!(r.route("/static/").unwrap().path_info, "/");
        assert_eq!(r.route("/static/a/b/").unwrap().path_info, "/a/b/");
    }

    #[test]
    fn malformed_routes_are_refused() {
        assert!(Route::parse("product", 0).is_err());
        assert!(Route::parse("/a/.../b", 0).is_err());
        assert!(Route::parse("/a/:", 0).is_err());
    }
}
