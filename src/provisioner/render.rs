//! `{{param.NAME}}`-style substitution in log texts, metadata values and app URLs. (Being written.)
