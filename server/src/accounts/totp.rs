//! Two-factor authentication primitives: TOTP codes (RFC 6238 with HMAC-SHA1, 30-second steps,
//! 6 digits — what every authenticator app supports) and single-use recovery codes.
//!
//! This module computes and compares; it stores nothing. The caller keeps the secret sealed (see
//! [`crate::crypto::Sealer`]), remembers the last step a user's code was accepted for so a code
//! cannot be used twice, and keeps only [`hash_recovery_code`] of each recovery code.

use data_encoding::BASE32_NOPAD;
use rand::RngExt;

use crate::crypto::{constant_time_eq, hmac_sha1, sha256_hex};

/// Length of a new secret in bytes (160 bits, the size RFC 4226 recommends for HMAC-SHA1).
pub const SECRET_LEN: usize = 20;
/// Seconds per time step.
pub const STEP_SECS: u64 = 30;
/// Digits in a code.
pub const DIGITS: u32 = 6;
/// How many recovery codes a user gets at once.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// Letters and digits that cannot be mistaken for one another when read aloud or copied from
/// paper: no `0`/`o`, `1`/`l`/`i`. 31 symbols, so a 10-symbol code carries 49.5 bits.
const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyz";
/// The symbols per group in a recovery code, shown as `xxxx-xxxx-xx`.
const RECOVERY_GROUPS: [usize; 3] = [4, 4, 2];

/// A new random TOTP secret.
pub fn generate_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_LEN];
    rand::fill(&mut secret[..]);
    secret
}

/// The secret as authenticator apps expect it typed in: uppercase base32 without padding.
pub fn encode_secret(secret: &[u8]) -> String {
    BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI that authenticator apps read from a QR code
/// (<https://github.com/google/google-authenticator/wiki/Key-Uri-Format>).
pub fn otpauth_uri(issuer: &str, account: &str, secret: &[u8]) -> String {
    let issuer = percent_encode(issuer);
    format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECS}",
        account = percent_encode(account),
        secret = encode_secret(secret),
    )
}

/// Percent-encode everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The code for time `unix_secs` with `digits` digits (RFC 6238; the tests use 8 digits for the
/// RFC's vectors, users always get [`DIGITS`]).
pub fn code_at(secret: &[u8], unix_secs: u64, digits: u32) -> String {
    code_for_step(secret, unix_secs / STEP_SECS, digits)
}

/// HOTP (RFC 4226 §5.3) for counter `step`.
fn code_for_step(secret: &[u8], step: u64, digits: u32) -> String {
    let mac = hmac_sha1(secret, &step.to_be_bytes());
    let offset = usize::from(mac[19] & 0x0f);
    let binary = u32::from_be_bytes([
        mac[offset],
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]) & 0x7fff_ffff;
    // The 31-bit value has at most 10 digits: with more, no reduction is needed.
    let value = match 10u64.checked_pow(digits) {
        Some(modulus) => u64::from(binary) % modulus,
        None => u64::from(binary),
    };
    let width = usize::try_from(digits).unwrap_or(usize::MAX);
    format!("{value:0width$}")
}

/// Check `code` (6 digits; spaces are ignored) against the steps around `unix_secs`: the current
/// step and one either side, to allow for clock drift and typing time. Steps at or before
/// `last_used_step` are refused so an accepted code cannot be replayed. Returns the matched step,
/// which the caller stores as the new `last_used_step`.
pub fn verify(
    secret: &[u8],
    code: &str,
    unix_secs: u64,
    last_used_step: Option<i64>,
) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != DIGITS as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = i64::try_from(unix_secs / STEP_SECS).ok()?;
    let mut matched = None;
    // Every candidate is computed and compared, so the time taken does not say which one matched.
    for step in [current - 1, current, current + 1] {
        let Ok(counter) = u64::try_from(step) else {
            continue;
        };
        let fresh = last_used_step.is_none_or(|last| step > last);
        let equal = constant_time_eq(
            code_for_step(secret, counter, DIGITS).as_bytes(),
            code.as_bytes(),
        );
        if equal && fresh {
            matched = Some(step);
        }
    }
    matched
}

/// An SVG image of the QR code for `uri` (from [`otpauth_uri`]), without an XML declaration so
/// it can be placed inline in HTML. `None` only if `uri` is too long for a QR code (about 2 KB).
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    Some(match svg.find("<svg") {
        Some(start) => svg[start..].to_owned(),
        None => svg,
    })
}

/// Ten new recovery codes such as `k7m2-9xq4-p3`, each usable once in place of a TOTP code. Show
/// them to the user once and store only [`hash_recovery_code`] of each.
pub fn generate_recovery_codes() -> Vec<String> {
    let mut rng = rand::rng();
    let mut codes: Vec<String> = Vec::with_capacity(RECOVERY_CODE_COUNT);
    while codes.len() < RECOVERY_CODE_COUNT {
        let groups: Vec<String> = RECOVERY_GROUPS
            .iter()
            .map(|&len| {
                (0..len)
                    .map(|_| {
                        let index = rng.random_range(0..RECOVERY_ALPHABET.len());
                        char::from(RECOVERY_ALPHABET[index])
                    })
                    .collect()
            })
            .collect();
        let code = groups.join("-");
        if !codes.contains(&code) {
            codes.push(code);
        }
    }
    codes
}

/// A recovery code as typed, reduced to the form that is hashed: lowercase, without spaces or
/// dashes.
pub fn normalize_recovery_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// What is stored for a recovery code: SHA-256 (hex) of its normalized form. Looking a typed code
/// up by this hash finds it however the user spaced or capitalised it.
pub fn hash_recovery_code(code: &str) -> String {
    sha256_hex(normalize_recovery_code(code).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";

    #[test]
    fn rfc_6238_sha1_vectors() {
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(RFC_SECRET, time, 8), code, "T={time}");
        }
    }

    #[test]
    fn rfc_4226_hotp_vectors() {
        // Appendix D: the same secret, counters 0..9, 6 digits.
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(code_for_step(RFC_SECRET, counter as u64, 6), *code);
        }
    }

    #[test]
    fn six_digit_codes_keep_leading_zeros() {
        // T=1111111109 gives 07081804 with 8 digits, so 081804 with 6.
        assert_eq!(code_at(RFC_SECRET, 1_111_111_109, 6), "081804");
    }

    #[test]
    fn verify_accepts_the_current_step_and_one_either_side() {
        let secret = generate_secret();
        let now = 1_700_000_015; // step 56_666_667
        let step = (now / 30) as i64;
        let current = code_at(&secret, now, 6);
        assert_eq!(verify(&secret, &current, now, None), Some(step));
        let previous = code_at(&secret, now - 30, 6);
        assert_eq!(verify(&secret, &previous, now, None), Some(step - 1));
        let next = code_at(&secret, now + 30, 6);
        assert_eq!(verify(&secret, &next, now, None), Some(step + 1));
        for far in [now - 60, now + 60, now - 3600] {
            let code = code_at(&secret, far, 6);
            // Guard against the one-in-a-million chance that the far code equals a near one.
            if [&current, &previous, &next].contains(&&code) {
                continue;
            }
            assert_eq!(verify(&secret, &code, now, None), None, "{far}");
        }
    }

    #[test]
    fn verify_refuses_replays() {
        let secret = generate_secret();
        let now = 1_700_000_015;
        let code = code_at(&secret, now, 6);
        let step = verify(&secret, &code, now, None).unwrap();
        assert_eq!(verify(&secret, &code, now, Some(step)), None);
        assert_eq!(verify(&secret, &code, now + 20, Some(step)), None);
        // A code from before the last accepted step is refused too.
        let previous = code_at(&secret, now - 30, 6);
        assert_eq!(verify(&secret, &previous, now, Some(step)), None);
        // The next step's code is still fine.
        let next = code_at(&secret, now + 30, 6);
        assert_eq!(verify(&secret, &next, now + 30, Some(step)), Some(step + 1));
    }

    #[test]
    fn verify_ignores_spaces_and_requires_six_digits() {
        let secret = generate_secret();
        let now = 1_700_000_015;
        let code = code_at(&secret, now, 6);
        let spaced = format!(" {} {} ", &code[..3], &code[3..]);
        assert!(verify(&secret, &spaced, now, None).is_some());
        let eight = code_at(&secret, now, 8);
        for bad in [
            "",
            &code[..5],
            eight.as_str(),
            format!("{code}0").as_str(),
            format!("{}a", &code[..5]).as_str(),
            format!("-{}", &code[1..]).as_str(),
            "１２３４５６",
        ] {
            assert_eq!(verify(&secret, bad, now, None), None, "{bad:?}");
        }
        assert_eq!(verify(&generate_secret(), &code, now, None), None);
    }

    #[test]
    fn verify_at_the_epoch_has_no_previous_step() {
        let secret = generate_secret();
        let code = code_at(&secret, 0, 6);
        assert_eq!(verify(&secret, &code, 5, None), Some(0));
    }

    #[test]
    fn secrets_are_random_and_encode_as_base32() {
        let a = generate_secret();
        assert_eq!(a.len(), 20);
        assert_ne!(a, generate_secret());
        assert_eq!(
            encode_secret(RFC_SECRET),
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
        );
        assert_eq!(encode_secret(&a).len(), 32);
    }

    #[test]
    fn otpauth_uri_format() {
        let uri = otpauth_uri("Mudmap Lab", "jane+ops@example.org", RFC_SECRET);
        assert_eq!(
            uri,
            "otpauth://totp/Mudmap%20Lab:jane%2Bops%40example.org\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Mudmap%20Lab\
             &algorithm=SHA1&digits=6&period=30"
        );
        let uri = otpauth_uri("Ünï:co/de", "a&b=c?d", RFC_SECRET);
        assert!(
            uri.starts_with("otpauth://totp/%C3%9Cn%C3%AF%3Aco%2Fde:a%26b%3Dc%3Fd?"),
            "{uri}"
        );
    }

    #[test]
    fn qr_svg_renders_an_inline_svg() {
        let uri = otpauth_uri("Mudmap", "jane@example.org", RFC_SECRET);
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"), "{svg}");
        assert_eq!(qr_svg(&"x".repeat(5000)), None);
    }

    #[test]
    fn recovery_codes_are_unambiguous_and_distinct() {
        let codes = generate_recovery_codes();
        assert_eq!(codes.len(), 10);
        for code in &codes {
            assert_eq!(code.len(), 12, "{code}");
            let groups: Vec<&str> = code.split('-').collect();
            assert_eq!(
                groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
                [4, 4, 2],
                "{code}"
            );
            for c in code.chars().filter(|&c| c != '-') {
                assert!(RECOVERY_ALPHABET.contains(&(c as u8)), "{code}");
                assert!(!"0o1li".contains(c), "{code}");
            }
        }
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 10);
        assert_ne!(codes, generate_recovery_codes());
    }

    #[test]
    fn recovery_alphabet_has_31_distinct_symbols() {
        let mut symbols = RECOVERY_ALPHABET.to_vec();
        symbols.sort_unstable();
        symbols.dedup();
        assert_eq!(symbols.len(), 31);
    }

    #[test]
    fn recovery_codes_normalize_and_hash() {
        assert_eq!(normalize_recovery_code(" K7M2-9XQ4 - p3\n"), "k7m29xq4p3");
        assert_eq!(
            hash_recovery_code("K7M2 9XQ4 P3"),
            hash_recovery_code("k7m2-9xq4-p3")
        );
        assert_eq!(
            hash_recovery_code("k7m2-9xq4-p3"),
            sha256_hex(b"k7m29xq4p3")
        );
        assert_ne!(
            hash_recovery_code("k7m2-9xq4-p3"),
            hash_recovery_code("k7m2-9xq4-p4")
        );
        assert_eq!(hash_recovery_code("k7m2-9xq4-p3").len(), 64);
    }
}
