//! Templates and their versions: uploads (`files`), versions and their imports
//! (`versions`, `version_parts`), dry runs, dynamic parameters, templates (`template`), and the
//! changes Coder's dashboard makes to both (`changes`).

pub mod changes;
pub mod dry_runs;
pub mod dynamic_parameters;
pub mod files;
pub mod template;
pub mod version_parts;
pub mod versions;
