//! The few API calls the scenarios make (JSON under `/api/v1`).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Client, RequestBuilder, Url};
use serde::Deserialize;
use serde_json::json;

pub const STORE: &str = "demo-restaurant";
pub const PASSWORD: &str = "demo-password";

/// A keep-alive HTTP/1 client, optionally bound to a source address.
pub fn client(local: Option<IpAddr>) -> Client {
    let mut builder = Client::builder()
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .timeout(Duration::from_secs(60));
    if let Some(ip) = local {
        builder = builder.local_address(ip);
    }
    builder.build().expect("a plain HTTP client")
}

/// A client without a whole-request timeout, for endless streams.
pub fn stream_client(local: Option<IpAddr>) -> Client {
    let mut builder = Client::builder()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(30));
    if let Some(ip) = local {
        builder = builder.local_address(ip);
    }
    builder.build().expect("a plain HTTP client")
}

#[derive(Clone)]
pub struct Api {
    pub client: Client,
    pub base: Url,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OrderInfo {
    pub id: i64,
    pub version: i64,
    pub status: String,
    pub items: Vec<ItemInfo>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ItemInfo {
    pub id: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Product {
    pub id: i64,
    pub station: String,
}

impl Api {
    pub fn new(client: Client, base: Url) -> Self {
        Api { client, base }
    }

    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("a valid path")
    }

    pub async fn login(&self, email: &str) -> anyhow::Result<String> {
        let response = self
            .client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": PASSWORD }))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!("login {email}: {}", response.status());
        }
        let body: serde_json::Value = response.json().await?;
        body["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token in the login answer")
    }

    pub async fn products(&self) -> anyhow::Result<Vec<Product>> {
        #[derive(Deserialize)]
        struct StoreBody {
            products: Vec<Product>,
        }
        let body: StoreBody = self
            .client
            .get(self.url(&format!("/api/v1/stores/{STORE}")))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        Ok(body.products)
    }

    /// Places an order of `products` (one of each), pickup.
    pub async fn place(&self, token: &str, products: &[i64]) -> anyhow::Result<OrderInfo> {
        expect_order(self.place_request(token, products).send().await?).await
    }

    /// The request [`place`](Self::place) sends.
    pub fn place_request(&self, token: &str, products: &[i64]) -> RequestBuilder {
        let items: Vec<_> = products
            .iter()
            .map(|p| json!({ "product": p, "quantity": 1 }))
            .collect();
        self.client
            .post(self.url("/api/v1/orders"))
            .bearer_auth(token)
            .json(&json!({ "store": STORE, "items": items, "fulfilment": { "type": "pickup" } }))
    }

    pub async fn transition(
        &self, token: &str, order: i64, to: &str, expected_version: i64,
    ) -> anyhow::Result<OrderInfo> {
        let request = self.transition_request(token, order, to, expected_version);
        expect_order(request.send().await?).await
    }

    /// The request [`transition`](Self::transition) sends.
    pub fn transition_request(
        &self, token: &str, order: i64, to: &str, expected_version: i64,
    ) -> RequestBuilder {
        self.client
            .post(self.url(&format!("/api/v1/orders/{order}/transitions")))
            .bearer_auth(token)
            .json(&json!({ "to": to, "expected_version": expected_version }))
    }

    pub async fn item_status(
        &self, token: &str, order: i64, item: i64, status: &str,
    ) -> anyhow::Result<OrderInfo> {
        let request = self.item_status_request(token, order, item, status);
        expect_order(request.send().await?).await
    }

    /// The request [`item_status`](Self::item_status) sends.
    pub fn item_status_request(
        &self, token: &str, order: i64, item: i64, status: &str,
    ) -> RequestBuilder {
        self.client
            .patch(self.url(&format!("/api/v1/orders/{order}/items/{item}")))
            .bearer_auth(token)
            .json(&json!({ "status": status }))
    }

    /// GETs `path` and reads the whole body; errors on a non-2xx answer.
    pub async fn get_ok(&self, token: Option<&str>, path: &str) -> anyhow::Result<usize> {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}");
        }
        Ok(body.len())
    }
}

async fn expect_order(response: reqwest::Response) -> anyhow::Result<OrderInfo> {
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        bail!("{status}: {}", text.chars().take(200).collect::<String>());
    }
    Ok(response.json().await?)
}
