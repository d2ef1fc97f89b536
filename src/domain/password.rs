//! Whether a new password is strong enough, as Coder decides (`coderd/userpassword.Validate`):
//! an estimate of its entropy of at least 52 bits (go-password-validator 0.3.0: the size of the
//! alphabets it draws from, to the power of its length once runs and keyboard sequences are
//! cut short), then at most 64 bytes. Ported rule for rule, messages included.

const MIN_ENTROPY: f64 = 52.0;
pub const MAX_BYTES: usize = 64;

const REPLACE: &str = "!@$&*";
const SEP: &str = "_-., ";
const OTHER_SPECIAL: &str = "\"#%'()+/:;<=>?[\\]^{|}~";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const SEQUENCES: [&str; 5] = [
    "0123456789",
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "abcdefghijklmnopqrstuvwxyz",
];

/// `Ok` for a strong enough password, else Coder's words for what to do.
pub fn validate(password: &str) -> Result<(), String> {
    if entropy(password) < MIN_ENTROPY {
        return Err(weakness(password));
    }
    if password.len() > MAX_BYTES {
        return Err(format!(
            "password must be no more than {MAX_BYTES} characters"
        ));
    }
    Ok(())
}

/// Which alphabet a character belongs to, in the validator's order of checks.
fn class(c: char) -> Option<usize> {
    [REPLACE, SEP, OTHER_SPECIAL, LOWER, UPPER, DIGITS]
        .iter()
        .position(|set| set.contains(c))
}

fn weakness(password: &str) -> String {
    let mut has = [false; 6];
    for c in password.chars() {
        if let Some(i) = class(c) {
            has[i] = true;
        }
    }
    let mut hints = Vec::new();
    if !(has[0] && has[1] && has[2]) {
        hints.push("including more special characters");
    }
    for (i, hint) in [
        (3, "using lowercase letters"),
        (4, "using uppercase letters"),
        (5, "using numbers"),
    ] {
        if !has[i] {
            hints.push(hint);
        }
    }
    if hints.is_empty() {
        "insecure password, try using a longer password".to_string()
    } else {
        format!(
            "insecure password, try {} or using a longer password",
            hints.join(", ")
        )
    }
}

fn entropy(password: &str) -> f64 {
    let base = base(password);
    if base == 0 {
        return 0.0;
    }
    length(password) as f64 * (base as f64).log2()
}

/// The size of the alphabets the password draws from: each class used counts whole, each
/// distinct character outside them counts one.
fn base(password: &str) -> usize {
    let sizes = [REPLACE, SEP, OTHER_SPECIAL, LOWER, UPPER, DIGITS].map(|s| s.chars().count());
    let mut used = [false; 6];
    let mut others = std::collections::BTreeSet::new();
    for c in password.chars() {
        match class(c) {
            Some(i) => used[i] = true,
            None => {
                others.insert(c);
            }
        }
    }
    others.len()
        + used
            .iter()
            .zip(sizes)
            .filter(|(u, _)| **u)
            .map(|(_, n)| n)
            .sum::<usize>()
}

/// The length that counts, in bytes: runs of one character cut to two, and runs along a
/// keyboard or alphabet sequence (either way) cut as the validator cuts them.
fn length(password: &str) -> usize {
    let mut runes = remove_repeats(password.chars().collect());
    for seq in SEQUENCES {
        runes = remove_sequence(runes, &seq.chars().collect::<Vec<_>>());
    }
    for seq in SEQUENCES {
        runes = remove_sequence(runes, &seq.chars().rev().collect::<Vec<_>>());
    }
    runes.iter().map(|c| c.len_utf8()).sum()
}

/// The validator's `removeMoreThanTwoRepeatingChars` (it starts from two NUL characters).
fn remove_repeats(mut runes: Vec<char>) -> Vec<char> {
    let (mut prev_prev, mut prev) = ('\0', '\0');
    let mut i = 0;
    while i < runes.len() {
        let r = runes[i];
        if r == prev && r == prev_prev {
            runes.remove(i);
        } else {
            i += 1;
        }
        prev_prev = prev;
        prev = r;
    }
    runes
}

/// The validator's `removeMoreThanTwoFromSequence`, literally: its index steps (the inner
/// loop advances the password's index on a match, the outer loop once more) and its match
/// count (never reset between outer steps) are kept, since they decide the length.
fn remove_sequence(mut runes: Vec<char>, seq: &[char]) -> Vec<char> {
    let mut matches = 0;
    let mut i = 0usize;
    while i < runes.len() {
        for &r2 in seq {
            if i >= runes.len() {
                break;
            }
            if runes[i] != r2 {
                matches = 0;
                continue;
            }
            matches += 1;
            if matches > 2 {
                runes.remove(i);
            } else {
                i += 1;
            }
        }
        i += 1;
    }
    runes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coders_examples() {
        assert_eq!(
            validate("password").unwrap_err(),
            "insecure password, try including more special characters, using uppercase letters, using numbers or using a longer password"
        );
        assert!(validate("SomeSecurePassword!").is_ok());
        assert!(validate("MySecurePassword").is_ok());
        assert!(validate("abc123").is_err());
        assert!(validate(&"a".repeat(24)).is_err());
        assert!(validate("aaaaaa").is_err());
        // The library's own examples (at 52 bits, the same hints).
        assert_eq!(
            validate("MYPASS").unwrap_err(),
            "insecure password, try including more special characters, using lowercase letters, using numbers or using a longer password"
        );
        assert_eq!(
            validate("123").unwrap_err(),
            "insecure password, try including more special characters, using lowercase letters, using uppercase letters or using a longer password"
        );
    }

    #[test]
    fn entropy_counts_alphabets_and_cut_lengths() {
        assert_eq!(base("password"), 26);
        assert_eq!(base("SomeSecurePassword!"), 57);
        assert_eq!(base("a-b"), 31);
        assert_eq!(base("é"), 1);
        assert_eq!(length("aaaa"), 2);
        assert_eq!(length("abcdef"), 2);
        assert_eq!(length("password"), 8);
        // 9 characters from lower, upper and digits: 53.6 bits, enough; 8: 47.6, not.
        assert!(validate("Xq7Lm2Rt9").is_ok());
        assert!(validate("Xq7Lm2Rt").is_err());
    }

    #[test]
    fn at_most_64_bytes() {
        let long = "Aa1!".repeat(17);
        assert_eq!(
            validate(&long).unwrap_err(),
            "password must be no more than 64 characters"
        );
        assert!(validate(&long[..64]).is_ok());
    }

    #[test]
    fn the_passwords_kilns_documents_use_are_strong() {
        for p in ["a-long-password", "owner-password", "member-password"] {
            assert!(validate(p).is_ok(), "{p}");
        }
    }
}
