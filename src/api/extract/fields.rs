//! Fields of bodies and paths read as Coder reads them: ids where empty and the nil UUID mean
//! "not given", UUIDs from the path, names, and the wording of a failed validation tag.

use crate::api::error::ApiError;
use crate::api::error::ApiResult;

/// An optional id from a body: empty and the nil UUID mean "not given", as in Coder.
pub fn given_id(id: &Option<String>) -> Option<&str> {
    id.as_deref()
        .filter(|s| !s.is_empty() && *s != crate::model::NIL_UUID)
}

/// kiln's templates declare no presets (`GET /templateversions/{id}/presets` is `[]`), so a
/// preset id other than none (Go's zero UUID, `""`) names nothing: a validation, never a drop.
pub fn preset_refused(id: &Option<String>, invalid: ApiError) -> ApiError {
    match given_id(id) {
        Some(preset) => invalid.with_validation(
            "template_version_preset_id",
            format!(
                "Template version preset {preset:?} does not exist: kiln's templates declare no presets."
            ),
        ),
        None => invalid,
    }
}

/// A UUID from the path: 400 `Invalid UUID "<raw>".` when it does not parse.
pub fn parse_uuid(raw: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|e| {
            ApiError::bad_request(format!("Invalid UUID {raw:?}.")).with_detail(e.to_string())
        })
}

/// Coder's username / workspace-name rule: 1-32 alphanumerics in dash-separated groups.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Coder's detail for a failed validation tag.
pub fn tag_failed(tag: &str, value: &str) -> String {
    format!("Validation failed for tag {tag:?} with value: \"{value}\"")
}
