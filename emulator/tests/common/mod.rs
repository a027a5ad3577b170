//! HTTP helpers shared by the emulator's end-to-end tests.

#![allow(dead_code)] // each test file uses a different subset

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde_json::Value;

pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub async fn send(rb: reqwest::RequestBuilder) -> Resp {
    let r = rb.send().await.expect("request failed");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    Resp {
        status,
        headers,
        text,
    }
}

/// `POST {base}/v1.0/communications/calls/{raw_id}/keepAlive`, the id sent as given (raw).
pub async fn keep_alive(base: &str, raw_id: &str, token: Option<&str>) -> Resp {
    let mut rb = client()
        .post(format!(
            "{base}/v1.0/communications/calls/{raw_id}/keepAlive"
        ))
        .header("Content-Length", "0");
    if let Some(t) = token {
        rb = rb.header("Authorization", format!("Bearer {t}"));
    }
    send(rb).await
}

/// A control-API request: `{method} {base}/_emulator/{path}` with an optional JSON body.
pub async fn control(method: &str, base: &str, path: &str, body: Option<Value>) -> Resp {
    let c = client();
    let url = format!("{base}/_emulator/{path}");
    let mut rb = match method {
        "GET" => c.get(url),
        "POST" => c.post(url),
        "PUT" => c.put(url),
        "DELETE" => c.delete(url),
        m => panic!("method {m}"),
    };
    if let Some(b) = body {
        rb = rb
            .header("Content-Type", "application/json")
            .body(b.to_string());
    }
    send(rb).await
}

/// `POST {base}/{tenant}/oauth2/v2.0/token` with a form body.
pub async fn token_request(base: &str, tenant: &str, pairs: &[(&str, &str)]) -> Resp {
    send(
        client()
            .post(format!("{base}/{tenant}/oauth2/v2.0/token"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(form(pairs)),
    )
    .await
}

/// `application/x-www-form-urlencoded` text of `pairs`.
pub fn form(pairs: &[(&str, &str)]) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}
