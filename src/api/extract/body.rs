//! Request bodies: read with a size limit chosen per route and a deadline, and JSON decoded
//! the way Coder's decoder does (an object where an object is expected). Every refusal is an
//! `ApiError`, so it has Coder's shape.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::auth;
use crate::api::extract::limits::Limits;
use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::StreamExt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// Bodies of the sign-in and user routes: a few fields each.
pub const SMALL: usize = 64 << 10;
/// Most JSON bodies (templates, versions, workspaces, roles): names, parameters, schedules.
pub const MEDIUM: usize = 1 << 20;
/// Bodies that may carry a workspace's state (PUT state, POST builds with `state`): a
/// provisioner's state can be large, as Terraform's is.
pub const LARGE: usize = 64 << 20;

/// A whole body must arrive within this time, however slowly its bytes come.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(60);

/// A request body of at most `LIMIT` bytes.
pub struct Body<const LIMIT: usize>(pub Bytes);

impl<const LIMIT: usize> std::ops::Deref for Body<LIMIT> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// 413 with the limit in words.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "Request body is too large: this endpoint accepts at most {}.",
            size_words(limit)
        ),
    )
}

/// 408 for a body that did not arrive in time.
pub fn too_slow(timeout: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "Request body was not received within {} seconds.",
            timeout.as_secs()
        ),
    )
}

fn size_words(bytes: usize) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

impl<const LIMIT: usize> FromRequest for Body<LIMIT> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = ApiResult<Self>>>>;

    /// Up to `SMALL` bytes are read from anyone; beyond, only once the caller is signed in
    /// (the `Actor` extractor beside it is not waited for: actix polls a handler's extractors
    /// together) and has a large body's turn.
    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let reading = Reading::of(req, LIMIT, payload);
        let signed_in = (LIMIT > SMALL).then(|| {
            let req = req.clone();
            Box::pin(async move { auth::caller(&req).await.map(drop) }) as SignedIn
        });
        Box::pin(async move { reading.read(signed_in).await.map(Body) })
    }
}

/// A body of at most `limit` bytes, for a handler that has authenticated its caller itself
/// (the provisioner protocol's key): read now, with a large body's turn beyond `SMALL`.
pub async fn read_body(req: &HttpRequest, payload: web::Payload, limit: usize) -> ApiResult<Bytes> {
    let mut payload = payload.into_inner();
    Reading::of(req, limit, &mut payload).read(None).await
}

/// A body about to be read.
struct Reading {
    payload: Payload,
    declared: Option<usize>,
    limit: usize,
    limits: Option<web::Data<Limits>>,
}

type SignedIn = Pin<Box<dyn Future<Output = ApiResult<()>>>>;

impl Reading {
    fn of(req: &HttpRequest, limit: usize, payload: &mut Payload) -> Reading {
        Reading {
            payload: payload.take(),
            declared: req
                .headers()
                .get("Content-Length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok()),
            limit,
            limits: req.app_data::<web::Data<Limits>>().cloned(),
        }
    }

    /// Reads the body within `BODY_TIMEOUT`. Before anything beyond `SMALL` (announced or
    /// sent) is read, `signed_in` must succeed (its error is the answer, and the rest is never
    /// read), then the body waits for a large body's turn.
    async fn read(mut self, mut signed_in: Option<SignedIn>) -> ApiResult<Bytes> {
        let limit = self.limit;
        if self.declared.is_some_and(|n| n > limit) {
            return Err(too_large(limit));
        }
        let limits = self.limits.take();
        let mut turn = None;
        let read = async {
            let large = |n: usize| limit > SMALL && n > SMALL;
            if self.declared.is_some_and(large) {
                turn = grow(&mut signed_in, limits.as_ref()).await?;
            }
            let mut body = BytesMut::with_capacity(self.declared.unwrap_or(0).min(limit));
            while let Some(chunk) = self.payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::bad_request("Failed to read the request body.")
                        .with_detail(e.to_string())
                })?;
                let size = body.len() + chunk.len();
                if size > limit {
                    return Err(too_large(limit));
                }
                if turn.is_none() && large(size) && !self.declared.is_some_and(large) {
                    turn = grow(&mut signed_in, limits.as_ref()).await?;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body.freeze())
        };
        actix_web::rt::time::timeout(BODY_TIMEOUT, read)
            .await
            .unwrap_or_else(|_| Err(too_slow(BODY_TIMEOUT)))
    }
}

/// What a body needs before it grows beyond `SMALL`: a caller signed in (when it is to be
/// checked), then a large body's turn (held until the body is read).
async fn grow(
    signed_in: &mut Option<SignedIn>,
    limits: Option<&web::Data<Limits>>,
) -> ApiResult<Option<OwnedSemaphorePermit>> {
    if let Some(check) = signed_in.take() {
        check.await?;
    }
    match limits {
        Some(limits) => limits.large_body().await.map(Some),
        None => Ok(None),
    }
}

/// Decodes a JSON object whatever the Content-Type, as Coder's decoder (Go's) does:
/// - anything but an object (an array, a string, `null`) is refused: read as a struct, an
///   array would fill the fields in order;
/// - a member that is `null` counts as absent, at any depth (Go leaves the field as it was).
pub fn read_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    let invalid = || ApiError::bad_request("Request body must be valid JSON.");
    let mut value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| invalid().with_detail(e.to_string()))?;
    if !value.is_object() {
        return Err(invalid().with_detail(format!(
            "The request body must be a JSON object, not {}.",
            kind(&value)
        )));
    }
    drop_nulls(&mut value);
    serde_json::from_value(value).map_err(|e| invalid().with_detail(e.to_string()))
}

/// Whether `v` is what Go sends for a field it was not given: null, `""`, the zero UUID,
/// `false`, `0`, or an empty list or object (Go's encoder writes every field of a struct).
pub fn is_zero(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    match v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty() || s == crate::model::NIL_UUID,
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
    }
}

fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn drop_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|_, member| !member.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Req {
        transition: String,
    }

    #[derive(serde::Deserialize, Debug)]
    struct WithDefaults {
        #[serde(default)]
        name: String,
        #[serde(default)]
        values: Vec<String>,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    struct Inner {
        #[serde(default)]
        flag: bool,
    }

    #[test]
    fn null_members_are_absent() {
        let v: WithDefaults =
            read_json(br#"{"name": null, "values": null, "inner": {"flag": null}}"#).unwrap();
        assert_eq!(v.name, "");
        assert!(v.values.is_empty());
        assert!(!v.inner.unwrap().flag);
    }

    #[test]
    fn only_objects_are_read() {
        assert!(read_json::<Req>(br#" {"transition":"stop"}"#).is_ok());
        for body in [&b"[\"stop\"]"[..], b"null", b"\"stop\"", b"1", b"", b"  \n"] {
            let e = read_json::<Req>(body).unwrap_err();
            assert_eq!(e.body.message, "Request body must be valid JSON.");
        }
    }

    #[test]
    fn limits_in_words() {
        assert_eq!(size_words(SMALL), "64 KiB");
        assert_eq!(size_words(LARGE), "64 MiB");
        assert_eq!(size_words(1000), "1000 bytes");
    }
}
