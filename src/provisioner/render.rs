//! `{{param.NAME}}`-style substitution. (Placeholder until the full version lands.)

use std::collections::HashMap;

pub fn render(text: &str, vars: &HashMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{{{k}}}}}"), v);
    }
    out
}
