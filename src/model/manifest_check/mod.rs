//! `Manifest::parse`: reads `kiln.json` and checks it, in two passes.
//!
//! 1. `shape` (with `steps`): walks the raw JSON so that every unknown field, wrong JSON type and malformed
//!    step is reported with its JSON path (`parameters[1].options[0]`). The manifest types cannot
//!    use `deny_unknown_fields` (the `Step` enum is untagged), so this pass is what catches typos.
//! 2. `parameters` and `resources`: the rules on the deserialised manifest (Coder's rules for
//!    rich parameters, unique names, known words).
//!
//! All problems of a pass are reported together, one per line, each starting with its path.

mod parameters;
mod problems;
mod resources;
mod shape;
mod steps;
mod values;

pub use problems::param_env_var;

use super::manifest::Manifest;
use problems::Problems;

impl Manifest {
    /// Parses and checks the text of a `kiln.json`. The error lists every problem found, one per
    /// line, each starting with where it is (`parameters[0].options[1]: ...`).
    pub fn parse(text: &str) -> Result<Manifest, String> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() {
            return Err("kiln.json is empty; it must hold a JSON object such as \
                        {\"parameters\": [], \"resources\": [], \"steps\": {\"start\": []}}"
                .into());
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("kiln.json is not valid JSON: {e}"))?;

        let mut problems = Problems::default();
        shape::check_manifest(&value, &mut problems);
        problems.into_result()?;

        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| format!("kiln.json: {e}"))?;

        let mut problems = Problems::default();
        parameters::check_parameters(&manifest.parameters, &mut problems);
        resources::check_resources(&manifest.resources, &mut problems);
        problems.into_result()?;
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests_rules;
#[cfg(test)]
mod tests_shape;
