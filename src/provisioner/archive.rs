//! Template archives (tar): reading `kiln.json` and extracting safely. (Placeholder until the
//! full version lands.)

use crate::model::manifest::Manifest;
use std::path::Path;

pub fn read_manifest(archive: &[u8]) -> Result<(Manifest, String), String> {
    let mut ar = tar::Archive::new(archive);
    for entry in ar.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let path = entry.path().map_err(|e| e.to_string())?.to_string_lossy().into_owned();
        if path.trim_start_matches("./") == "kiln.json" {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut entry, &mut text).map_err(|e| e.to_string())?;
            let m = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            return Ok((m, String::new()));
        }
    }
    Err("no kiln.json".into())
}

pub fn extract(archive: &[u8], dest: &Path) -> Result<(), String> {
    tar::Archive::new(archive).unpack(dest).map_err(|e| e.to_string())
}
