//! Rich parameter values at build time (spec section 5): which value each template parameter
//! gets, and whether it is valid.

use super::builds::WorkspaceBuildParameter;
use super::manifest::Parameter;

/// A parameter whose value is not acceptable: 400 `Unable to validate parameter "<name>"`.
#[derive(Debug, PartialEq, Eq)]
pub struct ParameterError {
    pub name: String,
    pub detail: String,
}

/// Resolves every template parameter, in template order: the value sent, else the previous
/// build's (not for ephemeral ones), else the default. `previous` is `None` for a first build.
pub fn resolve(
    params: &[Parameter],
    sent: &[WorkspaceBuildParameter],
    previous: Option<&[(String, String)]>,
) -> Result<Vec<(String, String)>, ParameterError> {
    let mut out = Vec::with_capacity(params.len());
    for p in params {
        let err = |detail: String| ParameterError {
            name: p.name.clone(),
            detail,
        };
        let prev = previous.and_then(|prev| {
            prev.iter()
                .find(|(n, _)| *n == p.name)
                .map(|(_, v)| v.as_str())
        });
        let given = sent
            .iter()
            .rev()
            .find(|s| s.name == p.name)
            .map(|s| s.value.as_str());
        if let (Some(g), Some(pv)) = (given, prev)
            && !p.mutable
            && g != pv
        {
            return Err(err(format!(
                "Parameter {:?} is not mutable, so it can't be updated after creating a workspace.",
                p.name
            )));
        }
        let inherited = if p.ephemeral { None } else { prev };
        let value = match given.or(inherited) {
            Some(v) => v.to_string(),
            None if p.required => {
                return Err(err(format!(
                    "Parameter {:?} is required but not provided",
                    p.name
                )));
            }
            None => p.default_value.clone(),
        };
        validate(p, &value, inherited).map_err(err)?;
        out.push((p.name.clone(), value));
    }
    Ok(out)
}

/// Checks one value against the parameter's options, type and validation rules.
pub fn validate(p: &Parameter, value: &str, previous: Option<&str>) -> Result<(), String> {
    if !p.options.is_empty() {
        if p.kind == "list(string)" {
            let items: Vec<String> = serde_json::from_str(value)
                .map_err(|_| format!("value {value:?} is not valid list of strings"))?;
            if let Some(bad) = items
                .iter()
                .find(|i| !p.options.iter().any(|o| &o.value == *i))
            {
                return Err(format!("{bad:?} {}", options_message(p)));
            }
            return Ok(());
        }
        if !p.options.iter().any(|o| o.value == value) {
            return Err(options_message(p));
        }
        return Ok(());
    }
    match p.kind.as_str() {
        "bool" if value != "true" && value != "false" => {
            Err(r#"boolean value can be either "true" or "false""#.to_string())
        }
        "number" => validate_number(p, value, previous),
        "string" if !p.validation_regex.is_empty() => {
            let re = regex::Regex::new(&p.validation_regex)
                .map_err(|e| format!("compile regex {:?}: {e}", p.validation_regex))?;
            if re.is_match(value) {
                Ok(())
            } else {
                Err(p.validation_error.clone())
            }
        }
        "list(string)" => serde_json::from_str::<Vec<String>>(value)
            .map(|_| ())
            .map_err(|_| format!("value {value:?} is not valid list of strings")),
        _ => Ok(()),
    }
}

fn options_message(p: &Parameter) -> String {
    let values: Vec<&str> = p.options.iter().map(|o| o.value.as_str()).collect();
    format!(
        "parameter value must match one of options: [{}]",
        values.join(" ")
    )
}

fn validate_number(p: &Parameter, value: &str, previous: Option<&str>) -> Result<(), String> {
    let n: i64 = value
        .parse()
        .map_err(|_| format!("value {value:?} is not a number"))?;
    if let Some(min) = p.validation_min
        && n < min
    {
        return Err(format!("value {n} is less than the minimum {min}"));
    }
    if let Some(max) = p.validation_max
        && n > max
    {
        return Err(format!("value {n} is more than the maximum {max}"));
    }
    if let Some(prev) = previous.and_then(|v| v.parse::<i64>().ok()) {
        match p.validation_monotonic.as_str() {
            "increasing" if n < prev => {
                return Err(format!(
                    "parameter value '{n}' must be equal or greater than previous value: {prev}"
                ));
            }
            "decreasing" if n > prev => {
                return Err(format!(
                    "parameter value '{n}' must be equal or lower than previous value: {prev}"
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::manifest::ParameterOption;

    fn param(name: &str, kind: &str) -> Parameter {
        Parameter {
            name: name.into(),
            kind: kind.into(),
            mutable: true,
            ..Default::default()
        }
    }

    fn sent(name: &str, value: &str) -> Vec<WorkspaceBuildParameter> {
        vec![WorkspaceBuildParameter {
            name: name.into(),
            value: value.into(),
        }]
    }

    #[test]
    fn sent_then_previous_then_default() {
        let mut p = param("region", "string");
        p.default_value = "eu".into();
        let prev = vec![("region".to_string(), "us".to_string())];
        assert_eq!(resolve(&[p.clone()], &[], None).unwrap()[0].1, "eu");
        assert_eq!(resolve(&[p.clone()], &[], Some(&prev)).unwrap()[0].1, "us");
        assert_eq!(
            resolve(&[p.clone()], &sent("region", "ap"), Some(&prev)).unwrap()[0].1,
            "ap"
        );
        p.ephemeral = true;
        assert_eq!(resolve(&[p], &[], Some(&prev)).unwrap()[0].1, "eu");
    }

    #[test]
    fn errors_have_coders_details() {
        let mut p = param("size", "number");
        p.validation_min = Some(1);
        p.validation_max = Some(10);
        p.validation_monotonic = "increasing".into();
        let d = |r: Result<Vec<(String, String)>, ParameterError>| r.unwrap_err().detail;
        assert_eq!(
            d(resolve(&[p.clone()], &sent("size", "x"), None)),
            r#"value "x" is not a number"#
        );
        assert_eq!(
            d(resolve(&[p.clone()], &sent("size", "0"), None)),
            "value 0 is less than the minimum 1"
        );
        assert_eq!(
            d(resolve(&[p.clone()], &sent("size", "11"), None)),
            "value 11 is more than the maximum 10"
        );
        let prev = vec![("size".to_string(), "5".to_string())];
        assert_eq!(
            d(resolve(&[p.clone()], &sent("size", "4"), Some(&prev))),
            "parameter value '4' must be equal or greater than previous value: 5"
        );
        p.mutable = false;
        assert_eq!(
            d(resolve(&[p.clone()], &sent("size", "6"), Some(&prev))),
            "Parameter \"size\" is not mutable, so it can't be updated after creating a workspace."
        );
        let mut r = param("name", "string");
        r.required = true;
        assert_eq!(
            d(resolve(&[r], &[], None)),
            "Parameter \"name\" is required but not provided"
        );
        let b = param("on", "bool");
        assert_eq!(
            d(resolve(&[b], &sent("on", "yes"), None)),
            r#"boolean value can be either "true" or "false""#
        );
        let mut o = param("os", "string");
        o.options = ["linux", "mac"]
            .map(|v| ParameterOption {
                name: v.into(),
                value: v.into(),
                description: String::new(),
                icon: String::new(),
            })
            .to_vec();
        assert_eq!(
            d(resolve(&[o], &sent("os", "win"), None)),
            "parameter value must match one of options: [linux mac]"
        );
        let mut re = param("user", "string");
        re.validation_regex = "^[a-z]+$".into();
        re.validation_error = "lowercase letters only".into();
        assert_eq!(
            d(resolve(&[re], &sent("user", "Bob"), None)),
            "lowercase letters only"
        );
    }
}
