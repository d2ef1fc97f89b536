//! Query parameters the way Coder's `httpapi.QueryParamParser` reads them: every problem is
//! collected as a validation, and the request answers 400 `Query parameters have invalid
//! values.` with all of them at once.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;
use crate::api::extract::auth::serde_urlencoded_pairs;
use crate::model::ValidationError;
use actix_web::HttpRequest;

pub struct QueryParser {
    pairs: Vec<(String, String)>,
    errors: Vec<ValidationError>,
}

/// Go's `strconv.ParseInt` error text for `raw`.
pub fn go_parse_int_error(raw: &str) -> String {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    let why = if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        "value out of range"
    } else {
        "invalid syntax"
    };
    format!("strconv.ParseInt: parsing {raw:?}: {why}")
}

impl QueryParser {
    pub fn new(req: &HttpRequest) -> QueryParser {
        QueryParser {
            pairs: serde_urlencoded_pairs(req.query_string()),
            errors: Vec::new(),
        }
    }

    /// Every value sent for `key`, in order.
    pub fn values(&self, key: &str) -> Vec<&str> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The first value of `key` (Go's `url.Values.Get`); `None` when absent.
    pub fn first(&self, key: &str) -> Option<&str> {
        self.values(key).into_iter().next()
    }

    fn invalid(&mut self, key: &str, detail: String) {
        self.errors.push(ValidationError {
            field: key.to_string(),
            detail,
        });
    }

    /// The one value of `key`: `None` when absent or empty, and a validation error when it is
    /// given more than once.
    fn single(&mut self, key: &str) -> Option<String> {
        let values = self.values(key);
        match values.first() {
            None | Some(&"") => None,
            Some(_) if values.len() > 1 => {
                let n = values.len();
                self.invalid(
                    key,
                    format!(
                        "Query param {key:?} provided more than once, found {n} times. Only provide 1 instance of this query param."
                    ),
                );
                None
            }
            Some(v) => Some(v.to_string()),
        }
    }

    /// An int32 >= 0 (Coder's `PositiveInt32`); `default` when absent or empty.
    pub fn positive_int32(&mut self, key: &str, default: i32) -> i32 {
        let Some(raw) = self.single(key) else {
            return default;
        };
        let why = match raw.parse::<i32>() {
            Ok(n) if n >= 0 => return n,
            Ok(_) => "value is negative".to_string(),
            Err(_) => go_parse_int_error(&raw),
        };
        self.invalid(
            key,
            format!("Query param {key:?} must be a valid 32-bit positive integer: {why}"),
        );
        0
    }

    /// A UUID; `None` when absent or empty (or invalid, with a validation error).
    pub fn uuid(&mut self, key: &str) -> Option<String> {
        let raw = self.single(key)?;
        match uuid::Uuid::parse_str(&raw) {
            Ok(u) => Some(u.to_string()),
            Err(_) => {
                self.invalid(key, format!("Query param {key:?} must be a valid uuid"));
                None
            }
        }
    }

    /// A UUID that must be given (Coder's `RequiredNotEmpty` then `UUID`).
    pub fn required_uuid(&mut self, key: &str) -> Option<String> {
        if self.values(key).iter().all(|v| v.is_empty()) {
            self.invalid(
                key,
                format!("Query param {key:?} is required and cannot be empty"),
            );
            return None;
        }
        self.uuid(key)
    }

    /// One of `allowed`; `default` when absent or empty.
    pub fn one_of(
        &mut self,
        key: &str,
        allowed: &[&'static str],
        default: &'static str,
    ) -> &'static str {
        let Some(raw) = self.single(key) else {
            return default;
        };
        match allowed.iter().find(|a| **a == raw) {
            Some(a) => a,
            None => {
                self.invalid(
                    key,
                    format!("Query param {key:?} has invalid value: {raw:?} is not a valid value"),
                );
                default
            }
        }
    }

    /// Every value of `key`, split at commas, as UUIDs (Coder's `UUIDs`).
    pub fn uuids(&mut self, key: &str) -> Vec<String> {
        let mut ids = Vec::new();
        let mut bad = Vec::new();
        for v in self.values(key).iter().flat_map(|v| v.split(',')) {
            let v = v.trim();
            match uuid::Uuid::parse_str(v) {
                Ok(u) => ids.push(u.to_string()),
                Err(_) if v.len() != 36 => bad.push(format!("invalid UUID length: {}", v.len())),
                Err(_) => bad.push("invalid UUID format".to_string()),
            }
        }
        if !bad.is_empty() {
            let detail = format!("Query param {key:?} has invalid values: {}", bad.join("\n"));
            self.invalid(key, detail);
        }
        ids
    }

    /// Every value of `key`, split at commas (Coder's `Strings`).
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.values(key)
            .iter()
            .flat_map(|v| v.split(','))
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// A validation for each parameter not in `known` (Coder's `ErrorExcessParams`).
    pub fn reject_others(&mut self, known: &[&str]) {
        let mut others: Vec<String> = Vec::new();
        for (k, _) in &self.pairs {
            if !known.contains(&k.as_str()) && !others.contains(k) {
                others.push(k.clone());
            }
        }
        for k in others {
            self.invalid(&k, format!("{k:?} is not a valid query param"));
        }
    }

    /// 400 `Query parameters have invalid values.` when anything was invalid.
    pub fn finish(self) -> ApiResult<()> {
        self.finish_with("Query parameters have invalid values.")
    }

    /// 400 with `message` when anything was invalid.
    pub fn finish_with(self, message: &str) -> ApiResult<()> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let mut e = ApiError::bad_request(message);
        e.body.validations = self.errors;
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_int_errors() {
        assert_eq!(
            go_parse_int_error("abc"),
            "strconv.ParseInt: parsing \"abc\": invalid syntax"
        );
        assert_eq!(
            go_parse_int_error("99999999999"),
            "strconv.ParseInt: parsing \"99999999999\": value out of range"
        );
        assert_eq!(
            go_parse_int_error("-"),
            "strconv.ParseInt: parsing \"-\": invalid syntax"
        );
    }
}
