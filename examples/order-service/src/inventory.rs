//! Calls to the inventory service: its URL and service token come from variables.

use http_body_util::BodyExt;
use serde_json::Value;

/// The inventory's answer: status and JSON body (`Null` when it has none).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// `POST {inventory_url}{path}` with the service token, an idempotency key, and a JSON body
/// (none when `Null`).
pub async fn post(path: &str, idempotency_key: &str, body: &Value) -> Result<Answer, String> {
    let base = variable("inventory_url").await?;
    let token = variable("inventory_token").await?;
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(format!("{}{path}", base.trim_end_matches('/')))
        .header("authorization", format!("Bearer {}", token.trim()))
        .header("idempotency-key", idempotency_key);
    let body = if body.is_null() {
        String::new()
    } else {
        request = request.header("content-type", "application/json");
        body.to_string()
    };
    let request = request
        .body(body)
        .map_err(|e| format!("the request to the inventory: {e}"))?;
    let response = spin_sdk::http::send(request)
        .await
        .map_err(|e| format!("the inventory could not be reached: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("the inventory's answer could not be read: {e:?}"))?
        .to_bytes();
    Ok(Answer {
        status,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

/// A variable of this component, or why it cannot be read.
pub async fn variable(name: &str) -> Result<String, String> {
    spin_sdk::variables::get(name)
        .await
        .map_err(|e| format!("the variable `{name}`: {e}"))
}
