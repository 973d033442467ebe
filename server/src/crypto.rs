//! Security primitives: the instance's master key, sealing secrets at rest, signed link tokens,
//! random identifiers and constant-time comparison.
//!
//! Everything secret that Mudmap keeps in its database (two-factor secrets now, device private keys
//! later) is sealed with a key derived from one [`MasterKey`], a file that lives next to the
//! database but is never stored in it. A copy of the database alone therefore reveals no secret
//! and cannot mint a valid link; a lost master key file makes every sealed value unreadable.
//!
//! This module owns the cryptography only: it does no database access, no HTTP and no policy
//! (which links expire when, who may open what). Callers choose the `purpose` and `aad` strings
//! that bind a key, token or ciphertext to its use; keep those strings stable, since changing one
//! invalidates everything made with the old string.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit};
use data_encoding::{BASE32_NOPAD, BASE64URL_NOPAD, HEXLOWER};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Length in bytes of the master key and of every derived subkey.
const KEY_LEN: usize = 32;
/// The block size of SHA-1 and SHA-256, which is the length of an HMAC key block.
const HMAC_BLOCK_LEN: usize = 64;

/// What went wrong with the master key or a sealed value. Messages are sentences for the operator
/// or the log; none of them contain key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("could not {action} the master key file {path}: {source}")]
    KeyFileIo {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the master key file {path} is not valid: {problem}. It must hold exactly 64 lowercase hex \
         characters, optionally followed by a newline. Do not edit or replace this file: every \
         secret encrypted with it (two-factor secrets, device keys) would be lost; restore the \
         original from a backup instead"
    )]
    MalformedKeyFile { path: PathBuf, problem: String },
    #[error("the value is too large to seal")]
    TooLarge,
    #[error("the sealed value is too short to be valid")]
    Truncated,
    #[error("the sealed value has format version {0}, which this version of Mudmap cannot read")]
    UnknownVersion(u8),
    #[error(
        "the sealed value cannot be opened: it was sealed with another master key or for another \
         record, or it was altered"
    )]
    Unauthentic,
}

/// The instance's 32-byte master key. Nothing is encrypted with it directly: each use derives its
/// own subkey with [`MasterKey::subkey`]. The bytes are wiped from memory on drop and never
/// printed.
pub struct MasterKey {
    bytes: [u8; KEY_LEN],
}

impl MasterKey {
    /// A master key from known bytes (tests, or a key supplied by other means).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self { bytes }
    }

    /// Read the master key from `path`, or create it there if the file does not exist.
    ///
    /// The file holds 64 lowercase hex characters and an optional trailing newline. A new file is
    /// created with mode 0600 (owner only) and synced to disk before this returns. An existing file
    /// that other users can read is used, with a warning.
    pub fn load_or_create(path: &Path) -> Result<Self, CryptoError> {
        match std::fs::read(path) {
            Ok(contents) => Self::from_file_contents(path, &contents),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(source) => Err(CryptoError::KeyFileIo {
                action: "read",
                path: path.to_owned(),
                source,
            }),
        }
    }

    fn from_file_contents(path: &Path, contents: &[u8]) -> Result<Self, CryptoError> {
        let key = parse_key_file(contents).map_err(|problem| CryptoError::MalformedKeyFile {
            path: path.to_owned(),
            problem,
        })?;
        warn_if_readable_by_others(path);
        Ok(key)
    }

    fn create(path: &Path) -> Result<Self, CryptoError> {
        let io_error = |action: &'static str| {
            let path = path.to_owned();
            move |source| CryptoError::KeyFileIo {
                action,
                path,
                source,
            }
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(io_error("create the folder of"))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = match options.open(path) {
            Ok(file) => file,
            // Another process created it between our read and our create: use theirs.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let contents = std::fs::read(path).map_err(io_error("read"))?;
                return Self::from_file_contents(path, &contents);
            }
            Err(source) => return Err(io_error("create")(source)),
        };

        let mut bytes = [0u8; KEY_LEN];
        rand::fill(&mut bytes[..]);
        let key = Self { bytes };
        bytes.zeroize();
        let mut text = HEXLOWER.encode(&key.bytes);
        text.push('\n');
        let written = file
            .write_all(text.as_bytes())
            .map_err(io_error("write"))
            .and_then(|()| file.sync_all().map_err(io_error("sync")));
        text.zeroize();
        if let Err(e) = written {
            // Nothing was sealed with this key yet: leave no half-written file to trip the next
            // start.
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(e);
        }
        sync_parent_dir(path);
        tracing::info!(
            path = %path.display(),
            "created a new master key; back this file up with the database: without it, sealed secrets cannot be read"
        );
        Ok(key)
    }

    /// A key for one purpose, derived as HMAC-SHA256(master key, `purpose`). Different purposes
    /// give independent keys; the same purpose always gives the same key.
    pub fn subkey(&self, purpose: &str) -> [u8; KEY_LEN] {
        hmac_sha256(&self.bytes, &[purpose.as_bytes()])
    }
}

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

/// Parse the key file: 64 lowercase hex characters and an optional trailing newline. The error is
/// a phrase saying what is wrong, without echoing the contents.
fn parse_key_file(contents: &[u8]) -> Result<MasterKey, String> {
    let text = contents
        .strip_suffix(b"\n")
        .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
        .unwrap_or(contents);
    if text.len() != 2 * KEY_LEN {
        return Err(format!("it holds {} characters instead of 64", text.len()));
    }
    if let Some(pos) = text
        .iter()
        .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(format!(
            "character {} is not a lowercase hex digit (0-9, a-f)",
            pos + 1
        ));
    }
    let mut decoded = HEXLOWER
        .decode(text)
        .map_err(|_| "it is not valid hex".to_owned())?;
    let key = <[u8; KEY_LEN]>::try_from(decoded.as_slice())
        .map(MasterKey::from_bytes)
        .map_err(|_| "it does not decode to 32 bytes".to_owned());
    decoded.zeroize();
    key
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                mode = format_args!("{mode:o}"),
                "the master key file can be read by other users of this machine: run `chmod 600 {}`",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

/// Make the new file's directory entry durable too. Best effort: some filesystems refuse.
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            if let Ok(dir) = std::fs::File::open(parent) {
                let _ = dir.sync_all();
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Encrypts secrets for storage (AES-256-GCM with a key derived for "mudmap.seal.v1").
///
/// A sealed value is `version (1 byte) || nonce (12 bytes) || ciphertext || tag (16 bytes)`, with
/// a fresh random nonce per call; the version byte is authenticated along with `aad`. Pass an
/// `aad` that names the record the value belongs to (for example `totp:<user_id>`), so that a
/// ciphertext copied into another row does not open there.
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl Sealer {
    const VERSION: u8 = 1;
    const NONCE_LEN: usize = 12;
    const TAG_LEN: usize = 16;

    pub fn new(master: &MasterKey) -> Self {
        let mut key = master.subkey("mudmap.seal.v1");
        let cipher = Aes256Gcm::new(&key.into());
        key.zeroize();
        Self { cipher }
    }

    /// Encrypt and authenticate `plaintext`, bound to `aad`. Fails only for values larger than
    /// AES-GCM allows (64 GiB).
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; Self::NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let full_aad = Self::full_aad(Self::VERSION, aad);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce.into(),
                Payload {
                    msg: plaintext,
                    aad: &full_aad,
                },
            )
            .map_err(|_| CryptoError::TooLarge)?;
        let mut sealed = Vec::with_capacity(1 + Self::NONCE_LEN + ciphertext.len());
        sealed.push(Self::VERSION);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    /// Decrypt a value made by [`Sealer::seal`] with the same master key and `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let (&version, rest) = sealed.split_first().ok_or(CryptoError::Truncated)?;
        if version != Self::VERSION {
            return Err(CryptoError::UnknownVersion(version));
        }
        if rest.len() < Self::NONCE_LEN + Self::TAG_LEN {
            return Err(CryptoError::Truncated);
        }
        let (nonce, ciphertext) = rest.split_at(Self::NONCE_LEN);
        let mut nonce_bytes = [0u8; Self::NONCE_LEN];
        nonce_bytes.copy_from_slice(nonce);
        let full_aad = Self::full_aad(version, aad);
        self.cipher
            .decrypt(
                &nonce_bytes.into(),
                Payload {
                    msg: ciphertext,
                    aad: &full_aad,
                },
            )
            .map_err(|_| CryptoError::Unauthentic)
    }

    fn full_aad(version: u8, aad: &[u8]) -> Vec<u8> {
        let mut full = Vec::with_capacity(1 + aad.len());
        full.push(version);
        full.extend_from_slice(aad);
        full
    }
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// Makes and checks the tokens in emailed links (password reset, email confirmation, invitations).
///
/// A token is `<id>.<mac>`: `id` is the random id of a database row (from [`random_id`]) that holds
/// what the link does and when it expires, and `mac` is HMAC-SHA256 of the purpose and the id under
/// a key derived from the master key ("mudmap.token.v1"), in unpadded base64url. The database holds
/// only the id, never the token, so a leaked or restored copy of the database cannot produce a
/// working link: that needs the master key file as well. The `purpose` (for example
/// `"password-reset"`) keeps a token made for one kind of link from working for another.
pub struct TokenMinter {
    key: [u8; KEY_LEN],
}

impl TokenMinter {
    /// Ids longer than this are refused by [`TokenMinter::verify`].
    pub const MAX_ID_LEN: usize = 64;

    pub fn new(master: &MasterKey) -> Self {
        Self {
            key: master.subkey("mudmap.token.v1"),
        }
    }

    /// The token for row `id` and `purpose`. `id` must be 1 to 64 characters without a `.` (ids
    /// from [`random_id`] are), or the token will not verify; `purpose` must not contain a NUL.
    pub fn mint(&self, purpose: &str, id: &str) -> String {
        let mac = self.mac(purpose, id);
        format!("{id}.{}", BASE64URL_NOPAD.encode(&mac))
    }

    /// The row id carried by `token` if it was minted here for `purpose`; `None` for anything
    /// else. The caller still looks the id up and checks the row (expiry, already used).
    pub fn verify(&self, purpose: &str, token: &str) -> Option<String> {
        let (id, mac) = token.split_once('.')?;
        if id.is_empty() || id.len() > Self::MAX_ID_LEN {
            return None;
        }
        // Checked before decoding so that a 20 KB "token" costs nothing.
        if mac.len() != BASE64URL_NOPAD.encode_len(KEY_LEN) {
            return None;
        }
        let given = BASE64URL_NOPAD.decode(mac.as_bytes()).ok()?;
        let expected = self.mac(purpose, id);
        constant_time_eq(&given, &expected).then(|| id.to_owned())
    }

    /// A keyed fingerprint of a secret `value` (hex), for storing things like recovery codes: a
    /// leaked database cannot be brute-forced offline without the master key.
    pub fn fingerprint(&self, purpose: &str, value: &str) -> String {
        self.mac(purpose, value)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn mac(&self, purpose: &str, id: &str) -> [u8; KEY_LEN] {
        hmac_sha256(&self.key, &[purpose.as_bytes(), b"\0", id.as_bytes()])
    }
}

impl Drop for TokenMinter {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

impl fmt::Debug for TokenMinter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenMinter(..)")
    }
}

/// A new random identifier: 128 bits as 26 lowercase base32 characters (`a-z`, `2-7`), safe in
/// URLs, file names and tokens.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::fill(&mut bytes[..]);
    BASE32_NOPAD.encode(&bytes).to_ascii_lowercase()
}

/// A new secret bearer token (session cookies): 256 bits as 43 unpadded base64url characters.
/// Store only its [`sha256_hex`], so the database cannot be used to impersonate anyone.
pub fn random_secret_token() -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes[..]);
    let token = BASE64URL_NOPAD.encode(&bytes);
    bytes.zeroize();
    token
}

/// SHA-256 of `input` as 64 lowercase hex characters.
pub fn sha256_hex(input: &[u8]) -> String {
    HEXLOWER.encode(&Sha256::digest(input))
}

/// Whether `a` and `b` are equal, in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// HMAC-SHA256 of the concatenation of `parts` under `key`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = hmac_key_block::<Sha256>(key);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    block.zeroize();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA1 of `message` under `key` (for TOTP, RFC 6238, which is defined over SHA-1).
pub(crate) fn hmac_sha1(key: &[u8], message: &[u8]) -> [u8; 20] {
    let mut block = hmac_key_block::<sha1::Sha1>(key);
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new(&block.into());
    block.zeroize();
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// The HMAC key block for `key` (RFC 2104 §2): the key zero-padded to the 64-byte block, or its
/// hash zero-padded if it is longer than a block. `hmac`'s own `new_from_slice` does the same but
/// returns a `Result` that can never be an error; building the block here keeps the callers
/// infallible without an `unwrap`. The RFC 4231 and RFC 6238 tests pin the result.
fn hmac_key_block<D: Digest>(key: &[u8]) -> [u8; HMAC_BLOCK_LEN] {
    let mut block = [0u8; HMAC_BLOCK_LEN];
    if key.len() <= HMAC_BLOCK_LEN {
        block[..key.len()].copy_from_slice(key);
    } else {
        let hash = D::digest(key);
        let n = hash.len().min(HMAC_BLOCK_LEN);
        block[..n].copy_from_slice(&hash[..n]);
    }
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_bytes([7u8; 32])
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test case 2: a short key.
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            HEXLOWER.encode(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block, which is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            &[b"Test Using Larger Than Block-Size Key - Hash Key First"],
        );
        assert_eq!(
            HEXLOWER.encode(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn hmac_sha1_matches_rfc_2202() {
        let mac = hmac_sha1(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            HEXLOWER.encode(&mac),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        let mac = hmac_sha1(
            &[0xaa; 80],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            HEXLOWER.encode(&mac),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn subkeys_differ_by_purpose_and_are_stable() {
        let key = master();
        assert_eq!(key.subkey("a"), key.subkey("a"));
        assert_ne!(key.subkey("a"), key.subkey("b"));
        assert_ne!(
            key.subkey("a"),
            MasterKey::from_bytes([8u8; 32]).subkey("a")
        );
    }

    #[test]
    fn master_key_debug_is_redacted() {
        assert_eq!(format!("{:?}", master()), "MasterKey(..)");
        assert_eq!(format!("{:?}", Sealer::new(&master())), "Sealer(..)");
        assert_eq!(
            format!("{:?}", TokenMinter::new(&master())),
            "TokenMinter(..)"
        );
    }

    #[test]
    fn master_key_is_created_then_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/dir/master.key");
        let created = MasterKey::load_or_create(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        assert_eq!(text.trim_end(), HEXLOWER.encode(&created.bytes));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(created.bytes, loaded.bytes);
        assert_eq!(created.subkey("x"), loaded.subkey("x"));
    }

    #[test]
    fn master_keys_are_random() {
        let dir = tempfile::tempdir().unwrap();
        let a = MasterKey::load_or_create(&dir.path().join("a")).unwrap();
        let b = MasterKey::load_or_create(&dir.path().join("b")).unwrap();
        assert_ne!(a.bytes, b.bytes);
    }

    #[test]
    fn master_key_file_without_newline_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        std::fs::write(&path, "ab".repeat(32)).unwrap();
        let key = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(key.bytes, [0xab; 32]);
    }

    #[test]
    fn malformed_master_key_files_are_refused_with_advice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        for (contents, problem) in [
            ("ab".repeat(31), "62 characters instead of 64"),
            ("ab".repeat(33), "66 characters instead of 64"),
            (String::new(), "0 characters instead of 64"),
            ("AB".repeat(32), "character 1 is not a lowercase hex digit"),
            (format!("{}zz", "ab".repeat(31)), "character 63 is not"),
            (format!("{}\n\n", "ab".repeat(32)), "65 characters"),
            (format!(" {}", "ab".repeat(32)), "65 characters"),
        ] {
            std::fs::write(&path, &contents).unwrap();
            let err = MasterKey::load_or_create(&path).unwrap_err();
            assert!(
                matches!(err, CryptoError::MalformedKeyFile { .. }),
                "{contents:?}: {err}"
            );
            let message = err.to_string();
            assert!(message.contains(problem), "{message}");
            assert!(
                message.contains("Do not edit or replace this file"),
                "{message}"
            );
            assert!(message.contains(&path.display().to_string()), "{message}");
            // The file is left untouched.
            assert_eq!(std::fs::read_to_string(&path).unwrap(), contents);
        }
    }

    #[test]
    fn unreadable_master_key_path_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        // A directory where the file should be.
        let err = MasterKey::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, CryptoError::KeyFileIo { .. }), "{err}");
        assert!(err
            .to_string()
            .starts_with("could not read the master key file"));
    }

    #[test]
    fn seal_round_trips() {
        let sealer = Sealer::new(&master());
        for plaintext in [&b""[..], b"x", &[0u8; 1000]] {
            let sealed = sealer.seal(plaintext, b"totp:42").unwrap();
            assert_eq!(sealed.len(), 1 + 12 + plaintext.len() + 16);
            assert_eq!(sealed[0], 1);
            assert_eq!(sealer.open(&sealed, b"totp:42").unwrap(), plaintext);
        }
    }

    #[test]
    fn seal_uses_a_fresh_nonce_each_time() {
        let sealer = Sealer::new(&master());
        let a = sealer.seal(b"same", b"aad").unwrap();
        let b = sealer.seal(b"same", b"aad").unwrap();
        assert_ne!(a[1..13], b[1..13]);
        assert_ne!(a, b);
    }

    #[test]
    fn open_refuses_wrong_key_aad_and_tampering() {
        let sealer = Sealer::new(&master());
        let sealed = sealer.seal(b"secret", b"totp:42").unwrap();

        let other = Sealer::new(&MasterKey::from_bytes([9u8; 32]));
        assert!(matches!(
            other.open(&sealed, b"totp:42"),
            Err(CryptoError::Unauthentic)
        ));
        assert!(matches!(
            sealer.open(&sealed, b"totp:43"),
            Err(CryptoError::Unauthentic)
        ));
        for i in 1..sealed.len() {
            let mut tampered = sealed.clone();
            tampered[i] ^= 0x01;
            assert!(
                matches!(
                    sealer.open(&tampered, b"totp:42"),
                    Err(CryptoError::Unauthentic)
                ),
                "byte {i}"
            );
        }
        let mut versioned = sealed.clone();
        versioned[0] = 2;
        assert!(matches!(
            sealer.open(&versioned, b"totp:42"),
            Err(CryptoError::UnknownVersion(2))
        ));
        for len in [0, 1, 12, 28] {
            assert!(matches!(
                sealer.open(&sealed[..len], b"totp:42"),
                Err(CryptoError::Truncated)
            ));
        }
        let mut extended = sealed.clone();
        extended.push(0);
        assert!(sealer.open(&extended, b"totp:42").is_err());
    }

    #[test]
    fn sealer_key_is_separate_from_token_key() {
        let key = master();
        assert_ne!(key.subkey("mudmap.seal.v1"), key.subkey("mudmap.token.v1"));
    }

    #[test]
    fn tokens_verify_and_carry_their_id() {
        let minter = TokenMinter::new(&master());
        let id = random_id();
        let token = minter.mint("password-reset", &id);
        assert!(token.starts_with(&format!("{id}.")));
        assert!(token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_'));
        assert_eq!(minter.verify("password-reset", &token), Some(id));
    }

    #[test]
    fn tokens_refuse_other_purposes_keys_and_tampering() {
        let minter = TokenMinter::new(&master());
        let token = minter.mint("password-reset", "abc123");
        assert_eq!(minter.verify("confirm-email", &token), None);
        let other = TokenMinter::new(&MasterKey::from_bytes([9u8; 32]));
        assert_eq!(other.verify("password-reset", &token), None);

        // The MAC of one id does not work for another.
        let (_, mac) = token.split_once('.').unwrap();
        assert_eq!(
            minter.verify("password-reset", &format!("abc124.{mac}")),
            None
        );
        // Flipping any character of the MAC breaks it.
        for (i, c) in mac.char_indices() {
            let replacement = if c == 'A' { 'B' } else { 'A' };
            let mut changed = mac.to_owned();
            changed.replace_range(i..i + 1, &replacement.to_string());
            assert_eq!(
                minter.verify("password-reset", &format!("abc123.{changed}")),
                None
            );
        }
    }

    #[test]
    fn tokens_refuse_garbage() {
        let minter = TokenMinter::new(&master());
        let good = minter.mint("p", "abc");
        let (_, mac) = good.split_once('.').unwrap();
        for garbage in [
            "",
            ".",
            "abc",
            "abc.",
            format!(".{mac}").as_str(),
            format!("abc.{mac}=").as_str(),
            format!("abc.{mac}.x").as_str(),
            format!("abc.{}", &mac[..mac.len() - 1]).as_str(),
            format!("abc.{}", "!".repeat(43)).as_str(),
            "x".repeat(20_000).as_str(),
        ] {
            assert_eq!(minter.verify("p", garbage), None, "{garbage:?}");
        }
        // Ids with a dot or longer than 64 characters never verify, even when minted here.
        assert_eq!(minter.verify("p", &minter.mint("p", "a.b")), None);
        let long = "x".repeat(65);
        assert_eq!(minter.verify("p", &minter.mint("p", &long)), None);
        let longest = "x".repeat(64);
        assert_eq!(
            minter.verify("p", &minter.mint("p", &longest)),
            Some(longest)
        );
    }

    #[test]
    fn random_ids_are_url_safe_and_distinct() {
        let a = random_id();
        let b = random_id();
        assert_eq!(a.len(), 26);
        assert_ne!(a, b);
        assert!(a.bytes().all(|c| matches!(c, b'a'..=b'z' | b'2'..=b'7')));
    }

    #[test]
    fn secret_tokens_are_256_bits_of_base64url() {
        let a = random_secret_token();
        assert_eq!(a.len(), 43);
        assert_eq!(BASE64URL_NOPAD.decode(a.as_bytes()).unwrap().len(), 32);
        assert_ne!(a, random_secret_token());
    }

    #[test]
    fn sha256_hex_matches_known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
