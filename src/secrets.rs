//! Secrets given on the command line or in the environment (`--database`, a provisioner key)
//! are readable by any process of the same OS user in `/proc/<pid>/cmdline` and
//! `/proc/<pid>/environ`, which read the process's own memory: the first argument and
//! environment strings the kernel placed there. Once kiln has read them, it overwrites them in
//! place (as PostgreSQL rewrites its command line), so a build's step running as kiln's user
//! cannot read them there. `--database-file` keeps the connection string out of both.

/// Overwrites with `*` every occurrence of each value (of 6 bytes or more, so that a short
/// value cannot wipe unrelated text) in this process's original command line and environment,
/// and removes `env_names` from the environment. Returns how many occurrences were hidden.
/// Call it early in `main`, before other threads start.
pub fn hide(values: &[&str], env_names: &[&str]) -> usize {
    let mut hidden = 0;
    if let Some(ranges) = proc_ranges() {
        for (start, end) in ranges {
            if end <= start {
                continue;
            }
            // SAFETY: [start, end) is this process's argument or environment block, which the
            // kernel maps writable on the main thread's stack for the whole life of the
            // process; no other thread runs yet.
            let block = unsafe { std::slice::from_raw_parts_mut(start as *mut u8, end - start) };
            for value in values.iter().map(|v| v.as_bytes()).filter(|v| v.len() >= 6) {
                hidden += overwrite(block, value);
            }
        }
    }
    for name in env_names {
        // SAFETY: called before any other thread exists (see above).
        unsafe { std::env::remove_var(name) };
    }
    hidden
}

/// Replaces every occurrence of `needle` in `block` with `*`s; how many.
fn overwrite(block: &mut [u8], needle: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i + needle.len() <= block.len() {
        if &block[i..i + needle.len()] == needle {
            block[i..i + needle.len()].fill(b'*');
            count += 1;
            i += needle.len();
        } else {
            i += 1;
        }
    }
    count
}

/// The argument and environment blocks (fields 48 to 51 of `/proc/self/stat`).
fn proc_ranges() -> Option<[(usize, usize); 2]> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<usize> = rest
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // `rest` begins with field 3.
    let field = |n: usize| fields.get(n - 3).copied();
    Some([(field(48)?, field(49)?), (field(50)?, field(51)?)])
}

/// `--database-file`: the connection string, from a file only kiln's user should read.
pub fn read_file(path: &std::path::Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read --database-file {}: {e}", path.display()))?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(format!("--database-file {} is empty", path.display()));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_is_overwritten() {
        let mut block = b"kiln\0server\0--database\0host=db password=s3cret!\0--database=host=db password=s3cret!\0".to_vec();
        assert_eq!(overwrite(&mut block, b"password=s3cret!"), 2);
        let text = String::from_utf8(block).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        assert!(text.contains("host=db ****************"), "{text}");
    }

    #[test]
    fn this_process_blocks_are_found() {
        let [(args, args_end), (env, env_end)] = proc_ranges().unwrap();
        assert!(
            args < args_end && env < env_end,
            "{args} {args_end} {env} {env_end}"
        );
    }
}
