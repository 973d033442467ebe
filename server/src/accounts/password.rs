//! Passwords: the policy a new password must meet, and argon2id hashing.
//!
//! The policy follows NIST SP 800-63B: a minimum length, a generous maximum, no composition rules
//! (no "one digit and one symbol"), but a refusal of passwords that attackers try first — common
//! leaked passwords, keyboard sequences, the user's own email address. Each refusal is one sentence
//! that tells the user what to do instead.
//!
//! Hashes are argon2id PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) with OWASP's
//! recommended parameters; verification reads the parameters from the stored string, so hashes
//! made with older parameters keep working. Hashing takes tens of milliseconds of CPU: async code
//! calls the `_blocking` variants, which run on tokio's blocking pool.

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use zeroize::Zeroizing;

/// The fewest characters a password may have.
pub const MIN_LENGTH: usize = 10;
/// The most characters a password may have (hashing cost grows with length).
pub const MAX_LENGTH: usize = 256;

/// argon2id memory cost in KiB (19 MiB), OWASP's recommendation with `T_COST` and `P_COST`.
const M_COST: u32 = 19_456;
const T_COST: u32 = 2;
const P_COST: u32 = 1;

/// Leaked passwords of at least 8 characters, lowercase, one per line.
const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Runs of keys or characters that people type as a "password". A password that is a piece of
/// one of these (forwards or backwards) is refused.
const SEQUENCES: &[&str] = &[
    "01234567890",
    "abcdefghijklmnopqrstuvwxyz",
    "`1234567890-=",
    "~!@#$%^&*()_+",
    "qwertyuiop[]\\",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "qwertyuiopasdfghjklzxcvbnm",
    "1234567890qwertyuiopasdfghjklzxcvbnm",
    "qwertzuiopasdfghjklyxcvbnm",
    "azertyuiopqsdfghjklmwxcvbn",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik,9ol.0p;/",
    "qazwsxedcrfvtgbyhnujmikolp",
    "1q2w3e4r5t6y7u8i9o0p",
    "zaq1xsw2cde3vfr4bgt5nhy6mju7",
];

/// What can go wrong while hashing. Verification does not fail: a malformed hash just does not
/// match.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("could not hash the password: {0}")]
    Hash(argon2::password_hash::Error),
    #[error("the password hashing task did not finish: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Check a new password against the policy. The error is the sentence to show under the password
/// field. `email` is the account's address (pass `""` if there is none yet).
pub fn check_policy(password: &str, email: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(format!(
            "Use at least {MIN_LENGTH} characters — a few unrelated words work well."
        ));
    }
    if length > MAX_LENGTH {
        return Err(format!(
            "Use at most {MAX_LENGTH} characters — this one has {length}."
        ));
    }
    let lower = password.to_lowercase();
    let mut distinct = lower.chars().collect::<Vec<_>>();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() == 1 {
        return Err(
            "One character repeated is guessed at once — a few unrelated words work well."
                .to_owned(),
        );
    }
    if is_sequence(&lower) {
        return Err(
            "Avoid a straight run of keys such as 1234567890 or qwertyuiop — a few unrelated words \
             work well."
                .to_owned(),
        );
    }
    if is_common(&lower) {
        return Err(
            "This password is on lists of leaked passwords that attackers try first — choose \
             another one."
                .to_owned(),
        );
    }
    if contains_email(&lower, email) {
        return Err(
            "Don't use your email address or its name part in the password — choose something \
             others can't guess."
                .to_owned(),
        );
    }
    Ok(())
}

/// Whether `lower` is a run taken from one of [`SEQUENCES`], forwards or backwards.
fn is_sequence(lower: &str) -> bool {
    let reversed: String = lower.chars().rev().collect();
    SEQUENCES
        .iter()
        .any(|run| run.contains(lower) || run.contains(reversed.as_str()))
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect()
    })
}

/// Whether `lower` is a common password, also once trailing digits and `!` are taken off
/// ("Password2024!" is "password").
fn is_common(lower: &str) -> bool {
    let set = common_passwords();
    let stripped = lower.trim_end_matches(|c: char| c.is_ascii_digit() || c == '!');
    set.contains(lower) || (!stripped.is_empty() && set.contains(stripped))
}

/// Whether `lower` contains the email address or its local part (the part before `@`, when that
/// is at least 3 characters).
fn contains_email(lower: &str, email: &str) -> bool {
    let email = email.trim().to_lowercase();
    if email.is_empty() {
        return false;
    }
    if lower.contains(email.as_str()) {
        return true;
    }
    let local = email.split('@').next().unwrap_or_default();
    local.chars().count() >= 3 && lower.contains(local)
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params =
        Params::new(M_COST, T_COST, P_COST, None).map_err(|e| PasswordError::Hash(e.into()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash `password` with argon2id and a fresh random salt, as a PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let hash = hasher()?
        .hash_password(password.as_bytes())
        .map_err(PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. A malformed or unsupported hash is `false`.
pub fn verify(password: &str, phc: &str) -> bool {
    // The parameters and algorithm come from `phc`; the instance only supplies the code.
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// [`hash`] on the blocking thread pool.
pub async fn hash_blocking(password: String) -> Result<String, PasswordError> {
    let password = Zeroizing::new(password);
    tokio::task::spawn_blocking(move || hash(&password)).await?
}

/// [`verify`] on the blocking thread pool.
pub async fn verify_blocking(password: String, phc: String) -> bool {
    let password = Zeroizing::new(password);
    match tokio::task::spawn_blocking(move || verify(&password, &phc)).await {
        Ok(matches) => matches,
        Err(e) => {
            tracing::error!(error = %e, "the password verification task did not finish");
            false
        }
    }
}

/// Spend the time of one [`verify_blocking`] without checking anything, for sign-in attempts with
/// an unknown email address: they then take as long as a wrong password, so response times do not
/// tell which addresses have accounts. The dummy hash is made on the first call (which therefore
/// costs two hashes; call this once at startup to warm it).
pub async fn verify_dummy(password: String) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let password = Zeroizing::new(password);
    let outcome = tokio::task::spawn_blocking(move || {
        let phc = match DUMMY.get() {
            Some(phc) => phc,
            None => match hash("mudmap-dummy-password") {
                Ok(phc) => DUMMY.get_or_init(|| phc),
                Err(e) => {
                    tracing::error!(error = %e, "could not make the dummy password hash");
                    return;
                }
            },
        };
        let _ = verify(&password, phc);
    })
    .await;
    if let Err(e) = outcome {
        tracing::error!(error = %e, "the dummy password verification task did not finish");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: &str = "Jane.Doe@example.org";

    fn refusal(password: &str) -> String {
        check_policy(password, EMAIL).unwrap_err()
    }

    #[test]
    fn good_passwords_pass() {
        for password in [
            "correct horse battery staple",
            "plum-orbit-lantern",
            "Tr0ub4dor&3x",
            "zq8#mLp2vRw!",
            "ünïcödé-passwörd",
        ] {
            assert_eq!(check_policy(password, EMAIL), Ok(()), "{password}");
        }
    }

    #[test]
    fn too_short_is_refused() {
        assert_eq!(
            refusal("k7#pQ2z!"),
            "Use at least 10 characters — a few unrelated words work well."
        );
        // Characters are counted, not bytes: nine two-byte letters are still too short.
        assert!(refusal("ééééééééé").starts_with("Use at least 10"));
        assert!(check_policy("zq8#mLp2vR", EMAIL).is_ok());
    }

    #[test]
    fn too_long_is_refused() {
        assert!(check_policy(&"ab".repeat(128), EMAIL).is_ok());
        let long = "ab".repeat(128) + "c";
        assert_eq!(
            refusal(&long),
            "Use at most 256 characters — this one has 257."
        );
    }

    #[test]
    fn one_repeated_character_is_refused() {
        for password in ["aaaaaaaaaa", "AAAAAaaaaa", "1111111111111"] {
            assert!(
                refusal(password).starts_with("One character repeated"),
                "{password}"
            );
        }
    }

    #[test]
    fn keyboard_and_number_runs_are_refused() {
        for password in [
            "1234567890",
            "0123456789",
            "9876543210",
            "abcdefghij",
            "ABCDEFGHIJKLMNOP",
            "qwertyuiop",
            "poiuytrewq",
            "qwertyuiopasdf",
            "asdfghjkl;'",
            "1qaz2wsx3edc",
            "1q2w3e4r5t",
            "qwertzuiop",
            "azertyuiop",
        ] {
            assert!(
                refusal(password).starts_with("Avoid a straight run of keys"),
                "{password}"
            );
        }
    }

    #[test]
    fn common_passwords_are_refused() {
        for password in [
            "password123",
            "Password123",
            "iloveyou12",
            "PASSWORD2024!",
            "letmein123",
            "admin12345",
            "pfsense123",
            "qwertyuiop123",
            "sunshine!!",
            "football99",
        ] {
            assert!(
                refusal(password).starts_with("This password is on lists of leaked passwords"),
                "{password}"
            );
        }
    }

    #[test]
    fn common_list_is_large_lowercase_and_long_enough() {
        let set = common_passwords();
        assert!(set.len() >= 500, "{} entries", set.len());
        for entry in set {
            assert!(entry.chars().count() >= 8, "{entry}");
            assert_eq!(*entry, entry.to_lowercase(), "{entry}");
        }
    }

    #[test]
    fn email_in_password_is_refused() {
        for password in [
            "jane.doe@example.org",
            "my jane.doe@example.org!",
            "JANE.DOE-rules-42",
            "xx-jane.doe-xx",
        ] {
            assert!(
                refusal(password).starts_with("Don't use your email address"),
                "{password}"
            );
        }
        // A local part shorter than 3 characters is too common a substring to refuse.
        assert!(check_policy("ed-likes-plums", "ed@example.org").is_ok());
        assert!(check_policy("bob-likes-plums", "bob@example.org").is_err());
        assert!(check_policy("bob-likes-plums", "").is_ok());
    }

    #[test]
    fn hash_and_verify_round_trip() {
        let phc = hash("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery staple", &phc));
        assert!(!verify("correct horse battery stapler", &phc));
        assert!(!verify("", &phc));
    }

    #[test]
    fn hashes_are_salted() {
        let a = hash("same password here").unwrap();
        let b = hash("same password here").unwrap();
        assert_ne!(a, b);
        assert!(verify("same password here", &a));
        assert!(verify("same password here", &b));
    }

    #[test]
    fn malformed_hashes_do_not_verify() {
        for phc in [
            "",
            "password",
            "$argon2id$",
            "$argon2id$v=19$m=19456,t=2,p=1$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$!!!!",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            "$unknown$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo",
        ] {
            assert!(!verify("password", phc), "{phc}");
        }
    }

    #[tokio::test]
    async fn blocking_variants_agree() {
        let phc = hash_blocking("plum-orbit-lantern".to_owned())
            .await
            .unwrap();
        assert!(verify_blocking("plum-orbit-lantern".to_owned(), phc.clone()).await);
        assert!(!verify_blocking("plum-orbit-lanterns".to_owned(), phc).await);
        verify_dummy("anything".to_owned()).await;
        verify_dummy("anything".to_owned()).await;
    }
}
