//! `on_success` in POST builds (Coder's server-side restart): a stop build may carry
//! `{"transition": "start", "rich_parameter_values": [...]}`, the start build the server queues
//! by itself when the stop succeeds (in the same transaction as the stop's completion, so the
//! restart completes even if the client has gone). A failed or canceled stop queues nothing.
//! Fields kiln does not support are refused with a validation, never dropped.

use crate::api::error::ApiError;
use crate::api::extract::body::is_zero;
use crate::api::extract::fields::tag_failed;
use crate::app::builds::OnSuccess;
use crate::model::Transition;
use serde_json::Value;

/// Reads `on_success` (absent or null: none), adding any problem to `invalid`.
pub fn parse(
    value: Option<&Value>,
    transition: Option<Transition>,
    mut invalid: ApiError,
) -> (ApiError, Option<OnSuccess>) {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return (invalid, None);
    };
    let Some(fields) = value.as_object() else {
        let e = invalid.with_validation("on_success", "on_success must be an object");
        return (e, None);
    };
    if transition.is_some() && transition != Some(Transition::Stop) {
        invalid = invalid.with_validation(
            "on_success",
            "on_success is only allowed on a build with transition \"stop\"",
        );
    }
    let mut params = Vec::new();
    let mut has_transition = false;
    // Go's encoder sends every field of the request's struct, the unset ones as their zero
    // values (`"00000000-…"` for a UUID, `""`, `false`): those mean "not given".
    for (key, v) in fields
        .iter()
        .filter(|(k, v)| *k == "transition" || !is_zero(v))
    {
        match key.as_str() {
            "transition" => {
                has_transition = true;
                match v.as_str() {
                    Some("start") => {}
                    Some(other) => {
                        invalid = invalid
                            .with_validation("on_success.transition", tag_failed("oneof", other))
                    }
                    None => {
                        invalid = invalid.with_validation(
                            "on_success.transition",
                            "transition must be the string \"start\"",
                        )
                    }
                }
            }
            "rich_parameter_values" if v.is_null() => {}
            "rich_parameter_values" => match serde_json::from_value(v.clone()) {
                Ok(p) => params = p,
                Err(e) => {
                    invalid = invalid.with_validation(
                        "on_success.rich_parameter_values",
                        format!("must be a list of {{\"name\", \"value\"}}: {e}"),
                    )
                }
            },
            other => {
                invalid = invalid.with_validation(
                    format!("on_success.{other}"),
                    "kiln does not support this field in on_success",
                )
            }
        }
    }
    if !has_transition {
        invalid = invalid.with_validation("on_success.transition", tag_failed("required", ""));
    }
    (
        invalid,
        Some(OnSuccess {
            rich_parameter_values: params,
        }),
    )
}
