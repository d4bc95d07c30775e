//! The route table: every method and path the order desk answers, kept in
//! the same value the router is built from. A module adds a route with
//! [`Routes::get`] (…`post`, `patch`, `delete`), which registers the handler
//! *and* records the route, so [`table`] lists exactly what
//! [`crate::router`] serves — the authorization matrix test walks it, and a
//! route added without a row there fails that test.

use std::fmt;

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::MethodRouter;

use crate::AppState;

/// One route: a method and a path template (`/api/v1/orders/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    pub method: Method,
    pub path: String,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// Routes being put together: the router and its table, never one without
/// the other.
#[must_use]
pub struct Routes {
    router: Router<AppState>,
    table: Vec<Route>,
}

impl Default for Routes {
    fn default() -> Self {
        Routes::new()
    }
}

impl Routes {
    /// No routes yet.
    pub fn new() -> Routes {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// `GET path` (and, as axum does for every GET, `HEAD path`).
    pub fn get<H, T>(self, path: &str, handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::GET, path, axum::routing::get(handler))
    }

    /// `POST path`.
    pub fn post<H, T>(self, path: &str, handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::POST, path, axum::routing::post(handler))
    }

    /// `PATCH path`.
    pub fn patch<H, T>(self, path: &str, handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::PATCH, path, axum::routing::patch(handler))
    }

    /// `PUT path`.
    pub fn put<H, T>(self, path: &str, handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::PUT, path, axum::routing::put(handler))
    }

    /// `DELETE path`.
    pub fn delete<H, T>(self, path: &str, handler: H) -> Routes
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add(Method::DELETE, path, axum::routing::delete(handler))
    }

    fn add(mut self, method: Method, path: &str, handler: MethodRouter<AppState>) -> Routes {
        // axum merges method routers registered on one path.
        self.router = self.router.route(path, handler);
        self.table.push(Route {
            method,
            path: path.to_owned(),
        });
        self
    }

    /// These routes and `other`'s.
    pub fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// `other`'s routes under `prefix`; `finish` completes their router
    /// (e.g. with its own fallbacks) before it is nested.
    pub fn nest(
        mut self, prefix: &str, other: Routes,
        finish: impl FnOnce(Router<AppState>) -> Router<AppState>,
    ) -> Routes {
        self.router = self.router.nest(prefix, finish(other.router));
        self.table
            .extend(other.table.into_iter().map(|route| Route {
                path: format!("{prefix}{}", route.path),
                ..route
            }));
        self
    }

    /// The routes, in the order they were added.
    pub fn table(&self) -> &[Route] {
        &self.table
    }

    /// The router serving these routes.
    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

/// Every route the order desk serves ([`crate::router`] is built from the
/// same [`Routes`]).
pub fn table() -> Vec<Route> {
    crate::routes().table().to_vec()
}
