//! Calls to the inventory service: its URL and service token come from variables.

use serde_json::Value;
use spin_sdk::http::{Method, Request, Response};

/// The inventory's answer: status and JSON body (`Null` when it has none).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// `POST {inventory_url}{path}` with the service token, an idempotency key, and a JSON body
/// (none when `Null`).
pub async fn post(path: &str, idempotency_key: &str, body: &Value) -> Result<Answer, String> {
    let variable = |name: &str| {
        spin_sdk::variables::get(name).map_err(|e| format!("the variable `{name}`: {e}"))
    };
    let base = variable("inventory_url")?;
    let token = variable("inventory_token")?;
    let mut request = Request::builder();
    request
        .method(Method::Post)
        .uri(format!("{}{path}", base.trim_end_matches('/')))
        .header("authorization", format!("Bearer {}", token.trim()))
        .header("idempotency-key", idempotency_key);
    let request = if body.is_null() {
        request.build()
    } else {
        request
            .header("content-type", "application/json")
            .body(body.to_string())
            .build()
    };
    let response: Response = spin_sdk::http::send(request)
        .await
        .map_err(|e| format!("the inventory could not be reached: {e}"))?;
    Ok(Answer {
        status: *response.status(),
        body: serde_json::from_slice(response.body()).unwrap_or(Value::Null),
    })
}
