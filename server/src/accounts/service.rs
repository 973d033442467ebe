//! The account service: registration, sign-in (password, then an optional second factor),
//! verification and reset links, password change and two-factor enrolment. Every mail is a job
//! enqueued in the transaction of the change that calls for it.

use std::sync::Arc;

use app::auth::{LoginOutcome, Me, OrgSummary, Registered, TotpEnrolment};
use app::error::AppError;
use app::roles::Role;
use app::services::{Caller, ClientInfo, SessionStage};
use base64::Engine as _;
use sqlx::Row;

use super::sessions::{self, Sessions};
use super::throttle::{Key, Throttle};
use super::{password, rows, totp};
use crate::audit;
use crate::crypto::{random_id, Sealer, TokenMinter};
use crate::jobs::Queue;
use crate::notify::{MailJob, PASSWORD_RESET, VERIFY_EMAIL};
use crate::services::{sql_failure, store_failure};
use crate::store::{now_ms, Store, StoreError};

const VERIFY_TTL_MS: i64 = 24 * 3_600_000;
const RESET_TTL_MS: i64 = 60 * 60_000;

/// Everything the account and organisation services share.
#[derive(Clone)]
pub struct AccountDeps {
    pub store: Store,
    pub queue: Queue,
    pub sessions: Sessions,
    pub throttle: Throttle,
    pub sealer: Arc<Sealer>,
    pub minter: Arc<TokenMinter>,
}

pub struct AccountService {
    deps: AccountDeps,
}

impl AccountService {
    pub fn new(deps: AccountDeps) -> Self {
        Self { deps }
    }
}

/// A user row, as sign-in needs it.
struct UserRow {
    id: String,
    email: String,
    password_hash: String,
    verified: bool,
    totp_secret: Option<String>,
    totp_last_step: Option<i64>,
}

async fn user_by(store: &Store, column: &str, value: &str) -> Result<Option<UserRow>, StoreError> {
    let sql = format!(
        "SELECT id, email, password_hash, email_verified_at, totp_secret, totp_last_step FROM users WHERE {column} = $1"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(store.pool())
        .await?;
    row.map(|row| {
        Ok(UserRow {
            id: row.try_get("id")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password_hash")?,
            verified: row
                .try_get::<Option<i64>, _>("email_verified_at")?
                .is_some(),
            totp_secret: row.try_get("totp_secret")?,
            totp_last_step: row.try_get("totp_last_step")?,
        })
    })
    .transpose()
    .map_err(|e: sqlx::Error| StoreError::from(e))
}

/// Trimmed, lowercased, and plausibly deliverable — or the sentence saying why not.
pub fn normalize_email(input: &str) -> Result<String, AppError> {
    let email = input.trim().to_lowercase();
    let invalid = || {
        AppError::Invalid(format!(
            "\"{}\" is not an email address. Use the form name@example.com.",
            input.trim()
        ))
    };
    if email.is_empty() {
        return Err(AppError::Invalid("Enter an email address.".to_owned()));
    }
    if email.len() > 254 || email.chars().any(char::is_whitespace) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    if local.is_empty()
        || domain.is_empty()
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
    {
        return Err(invalid());
    }
    email.parse::<lettre::Address>().map_err(|_| invalid())?;
    Ok(email)
}

/// A same-site path to go to after signing in; anything else becomes `/`.
pub fn safe_next(next: Option<String>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/".to_owned(),
    }
}

fn wrong_credentials() -> AppError {
    AppError::Invalid(
        "That email and password do not match. Check both, or reset your password.".to_owned(),
    )
}

fn bad_link() -> AppError {
    AppError::Invalid(
        "This link is not valid. Copy the whole link from the mail, or ask for a new one."
            .to_owned(),
    )
}

impl AccountService {
    fn store(&self) -> &Store {
        &self.deps.store
    }

    /// Check the throttle for these keys, turning a lock into its sentence.
    async fn ensure_not_locked(&self, keys: &[Key]) -> Result<(), AppError> {
        match self
            .deps
            .throttle
            .locked(keys)
            .await
            .map_err(store_failure)?
        {
            Some((key, minutes)) => Err(AppError::Throttled(key.message(minutes))),
            None => Ok(()),
        }
    }

    /// Count a failure; returns the error to show (a lock message if this failure locked).
    async fn failed(&self, keys: &[Key], otherwise: AppError) -> AppError {
        match self.deps.throttle.fail(keys).await {
            Ok(Some((key, minutes))) => AppError::Throttled(key.message(minutes)),
            Ok(None) => otherwise,
            Err(e) => store_failure(e),
        }
    }

    /// The signed-in user, once `password` proved to be theirs; a wrong one counts as a failed
    /// sign-in (throttled) and is refused with `wrong`.
    async fn confirm_password(
        &self,
        caller: &Caller,
        password: String,
        wrong: &str,
    ) -> Result<UserRow, AppError> {
        let keys = [Key::Account(caller.email.clone())];
        self.ensure_not_locked(&keys).await?;
        let user = user_by(self.store(), "id", &caller.user_id)
            .await
            .map_err(store_failure)?
            .ok_or(AppError::Unauthenticated)?;
        if password::verify_blocking(password, user.password_hash.clone()).await {
            Ok(user)
        } else {
            Err(self
                .failed(&keys, AppError::Invalid(wrong.to_owned()))
                .await)
        }
    }

    /// Start a full session for `user_id` in their first organisation; returns the cookie.
    async fn sign_in(&self, user_id: &str, client: &ClientInfo) -> Result<String, AppError> {
        let org = sessions::first_membership(self.store(), user_id)
            .await
            .map_err(store_failure)?;
        let mut tx = self.store().begin().await.map_err(store_failure)?;
        let token = self
            .deps
            .sessions
            .create(
                &mut tx,
                user_id,
                org.as_ref().map(|o| o.id.as_str()),
                SessionStage::Full,
                &client.addr,
            )
            .await
            .map_err(store_failure)?;
        crate::audit::account_event(
            &mut tx,
            user_id,
            "account.signed_in",
            format!("from {}", client.addr),
        )
        .await
        .map_err(store_failure)?;
        tx.commit().await.map_err(sql_failure)?;
        Ok(self.deps.sessions.cookie(&token))
    }

    /// What is stored of a recovery code: keyed with the master key, so a leaked database
    /// cannot be brute-forced offline.
    fn recovery_fingerprint(&self, code: &str) -> String {
        self.deps
            .minter
            .fingerprint("recovery-code", &totp::normalize_recovery_code(code))
    }

    fn open_totp(&self, user_id: &str, sealed: &str) -> Result<Vec<u8>, AppError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| AppError::Internal("totp-decode".to_owned()))?;
        self.deps
            .sealer
            .open(&bytes, format!("totp:{user_id}").as_bytes())
            .map_err(|e| {
                tracing::error!(error = %e, user.id = user_id, "cannot open a two-factor secret: was the master key replaced?");
                AppError::Internal("totp-open".to_owned())
            })
    }

    fn seal_totp(&self, user_id: &str, secret: &[u8]) -> Result<String, AppError> {
        let sealed = self
            .deps
            .sealer
            .seal(secret, format!("totp:{user_id}").as_bytes())
            .map_err(|e| {
                tracing::error!(error = %e, "cannot seal a two-factor secret");
                AppError::Internal("totp-seal".to_owned())
            })?;
        Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
    }

    /// Create a single-use mail token row and enqueue its mail, in one transaction.
    async fn send_token_mail(&self, user_id: &str, purpose: &'static str) -> Result<(), AppError> {
        let id = random_id();
        let now = now_ms();
        let ttl = if purpose == VERIFY_EMAIL {
            VERIFY_TTL_MS
        } else {
            RESET_TTL_MS
        };
        let mut tx = self.store().begin().await.map_err(store_failure)?;
        sqlx::query(
            "INSERT INTO email_tokens (id, purpose, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(purpose)
        .bind(user_id)
        .bind(now)
        .bind(now + ttl)
        .execute(&mut *tx)
        .await
        .map_err(sql_failure)?;
        let mail = if purpose == VERIFY_EMAIL {
            MailJob::VerifyEmail { token_id: id }
        } else {
            MailJob::PasswordReset { token_id: id }
        };
        mail.enqueue(&self.deps.queue, &mut tx, None)
            .await
            .map_err(store_failure)?;
        self.deps.queue.commit(tx).await.map_err(store_failure)
    }

    /// Look up a mail token; errors say whether it is unknown, used or expired.
    async fn take_token(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        purpose: &str,
        token: &str,
    ) -> Result<String, AppError> {
        let id = self
            .deps
            .minter
            .verify(purpose, token.trim())
            .ok_or_else(bad_link)?;
        let row: Option<(String, i64, Option<i64>)> = sqlx::query_as(
            "SELECT user_id, expires_at, used_at FROM email_tokens WHERE id = $1 AND purpose = $2",
        )
        .bind(&id)
        .bind(purpose)
        .fetch_optional(&mut **tx)
        .await
        .map_err(sql_failure)?;
        let (user_id, expires_at, used_at) = row.ok_or_else(bad_link)?;
        if used_at.is_some() {
            return Err(AppError::Conflict(if purpose == VERIFY_EMAIL {
                "This link was already used: your address is confirmed. Sign in.".to_owned()
            } else {
                "This reset link was already used. Ask for a new one if you still need it."
                    .to_owned()
            }));
        }
        let now = now_ms();
        if expires_at <= now {
            return Err(AppError::Invalid(
                "This link has expired. Ask for a new one on the sign-in page.".to_owned(),
            ));
        }
        sqlx::query("UPDATE email_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
            .bind(&id)
            .bind(now)
            .execute(&mut **tx)
            .await
            .map_err(sql_failure)?;
        Ok(user_id)
    }
}

#[async_trait::async_trait]
impl app::services::AccountService for AccountService {
    async fn me(&self, caller: &Caller) -> Result<Me, AppError> {
        let totp: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT totp_enabled_at FROM users WHERE id = $1")
                .bind(&caller.user_id)
                .fetch_optional(self.store().pool())
                .await
                .map_err(sql_failure)?;
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT o.id, o.name, m.role FROM memberships m JOIN organisations o ON o.id = m.org_id \
             WHERE m.user_id = $1 ORDER BY o.name, o.id",
        )
        .bind(&caller.user_id)
        .fetch_all(self.store().pool())
        .await
        .map_err(sql_failure)?;
        let orgs: Vec<OrgSummary> = rows
            .into_iter()
            .filter_map(|(id, name, role)| {
                Role::parse(&role).map(|role| OrgSummary { id, name, role })
            })
            .collect();
        let current = caller
            .org
            .as_ref()
            .and_then(|c| orgs.iter().find(|o| o.id == c.id).cloned());
        Ok(Me {
            user_id: caller.user_id.clone(),
            email: caller.email.clone(),
            totp_enabled: totp.and_then(|(t,)| t).is_some(),
            orgs,
            current,
        })
    }

    async fn register(
        &self,
        client: &ClientInfo,
        email: String,
        password: String,
        org_name: String,
        invitation: Option<String>,
    ) -> Result<(Registered, Option<String>), AppError> {
        let email = normalize_email(&email)?;
        password::check_policy(&password, &email).map_err(AppError::Invalid)?;
        if let Some(token) = invitation.filter(|t| !t.trim().is_empty()) {
            return self.register_invited(client, email, password, &token).await;
        }
        let org_name = match org_name.trim() {
            "" => format!("{}'s organisation", email.split('@').next().unwrap_or("My")),
            name => crate::orgs::validate_org_name(name)?,
        };
        let hash = password::hash_blocking(password)
            .await
            .map_err(|e| AppError::Internal(format!("hash-{e}")))?;
        let token_id = random_id();
        let now = now_ms();
        let mut tx = self.store().begin().await.map_err(store_failure)?;
        let user_id = match rows::insert_user(&mut tx, &email, &hash, false).await {
            Ok(id) => id,
            Err(e) if rows::is_unique_violation(&e) => {
                return Err(AppError::Conflict(format!(
                    "An account for {email} exists already. Sign in, or reset your password."
                )));
            }
            Err(e) => return Err(store_failure(e)),
        };
        let steps = async {
            let org_id = rows::insert_org_with_owner(&mut tx, &org_name, &user_id).await?;
            sqlx::query(
                "INSERT INTO email_tokens (id, purpose, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&token_id)
            .bind(VERIFY_EMAIL)
            .bind(&user_id)
            .bind(now)
            .bind(now + VERIFY_TTL_MS)
            .execute(&mut *tx)
            .await?;
            audit::record(
                &mut tx,
                audit::Entry {
                    org_id: Some(&org_id),
                    actor_id: Some(&user_id),
                    action: "org.created",
                    subject: &org_name,
                    detail: "at sign-up".to_owned(),
                },
            )
            .await?;
            MailJob::VerifyEmail {
                token_id: token_id.clone(),
            }
            .enqueue(&self.deps.queue, &mut tx, None)
            .await?;
            Ok::<_, StoreError>(org_id)
        };
        let org_id = steps.await.map_err(store_failure)?;
        self.deps.queue.commit(tx).await.map_err(store_failure)?;
        tracing::info!(user.id = %user_id, org.id = %org_id, "account registered");
        Ok((Registered::VerificationSent { email }, None))
    }

    async fn login(
        &self,
        client: &ClientInfo,
        email: String,
        password: String,
        next: Option<String>,
    ) -> Result<(LoginOutcome, String), AppError> {
        let email = email.trim().to_lowercase();
        if email.is_empty() || password.is_empty() {
            return Err(AppError::Invalid(
                "Enter your email address and password.".to_owned(),
            ));
        }
        let keys = [Key::Account(email.clone()), Key::Addr(client.addr.clone())];
        self.ensure_not_locked(&keys).await?;
        let user = user_by(self.store(), "email", &email)
            .await
            .map_err(store_failure)?;
        let Some(user) = user else {
            password::verify_dummy(password).await;
            return Err(self.failed(&keys, wrong_credentials()).await);
        };
        if !password::verify_blocking(password, user.password_hash.clone()).await {
            return Err(self.failed(&keys, wrong_credentials()).await);
        }
        if !user.verified {
            return Err(AppError::Unverified(user.email));
        }
        self.deps
            .throttle
            .clear(&keys[0])
            .await
            .map_err(store_failure)?;
        if user.totp_secret.is_some() {
            let mut tx = self.store().begin().await.map_err(store_failure)?;
            let token = self
                .deps
                .sessions
                .create(
                    &mut tx,
                    &user.id,
                    None,
                    SessionStage::SecondFactor,
                    &client.addr,
                )
                .await
                .map_err(store_failure)?;
            tx.commit().await.map_err(sql_failure)?;
            return Ok((
                LoginOutcome::SecondFactor,
                self.deps.sessions.cookie(&token),
            ));
        }
        let cookie = self.sign_in(&user.id, client).await?;
        tracing::info!(user.id = %user.id, "signed in");
        Ok((
            LoginOutcome::SignedIn {
                next: safe_next(next),
            },
            cookie,
        ))
    }

    async fn login_code(
        &self,
        client: &ClientInfo,
        caller: &Caller,
        code: String,
        next: Option<String>,
    ) -> Result<(LoginOutcome, String), AppError> {
        let keys = [
            Key::Account(caller.email.clone()),
            Key::Addr(client.addr.clone()),
        ];
        self.ensure_not_locked(&keys).await?;
        let user = user_by(self.store(), "id", &caller.user_id)
            .await
            .map_err(store_failure)?
            .ok_or(AppError::Unauthenticated)?;
        let Some(sealed) = user.totp_secret.as_deref() else {
            return Err(AppError::Invalid(
                "Two-factor sign-in is off for this account. Enter your password again.".to_owned(),
            ));
        };
        let secret = self.open_totp(&user.id, sealed)?;
        let now_secs = u64::try_from(now_ms() / 1000).unwrap_or(0);
        let digits: String = code.chars().filter(char::is_ascii_digit).collect();
        let accepted = if digits.len() == 6 && code.trim().len() <= 7 {
            match totp::verify(&secret, &code, now_secs, user.totp_last_step) {
                Some(step) => {
                    // Conditional update: a code accepted twice at once counts once.
                    let result = sqlx::query(
                        "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
                    )
                    .bind(&user.id)
                    .bind(step)
                    .execute(self.store().pool())
                    .await
                    .map_err(sql_failure)?;
                    result.rows_affected() == 1
                }
                None => false,
            }
        } else {
            let hash = self.recovery_fingerprint(&code);
            let result = sqlx::query(
                "UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(&user.id)
            .bind(&hash)
            .bind(now_ms())
            .execute(self.store().pool())
            .await
            .map_err(sql_failure)?;
            if result.rows_affected() == 1 {
                tracing::info!(user.id = %user.id, "signed in with a recovery code");
            }
            result.rows_affected() == 1
        };
        if !accepted {
            return Err(self
                .failed(
                    &keys,
                    AppError::Invalid(
                        "That code is not right. Codes change every 30 seconds: check the clock of your device, or use a recovery code.".to_owned(),
                    ),
                )
                .await);
        }
        self.deps
            .throttle
            .clear(&keys[0])
            .await
            .map_err(store_failure)?;
        // A new session id for the signed-in session (the half-signed-in one is dropped).
        self.deps
            .sessions
            .revoke(&caller.session)
            .await
            .map_err(store_failure)?;
        let cookie = self.sign_in(&user.id, client).await?;
        tracing::info!(user.id = %user.id, "signed in with a second factor");
        Ok((
            LoginOutcome::SignedIn {
                next: safe_next(next),
            },
            cookie,
        ))
    }

    async fn logout(&self, session: Option<String>) -> Result<String, AppError> {
        if let Some(hash) = session {
            self.deps
                .sessions
                .revoke(&hash)
                .await
                .map_err(store_failure)?;
        }
        Ok(self.deps.sessions.clear_cookie())
    }

    async fn verify_email(&self, token: String) -> Result<String, AppError> {
        let mut tx = self.store().begin().await.map_err(store_failure)?;
        let user_id = self.take_token(&mut tx, VERIFY_EMAIL, &token).await?;
        let now = now_ms();
        sqlx::query("UPDATE users SET email_verified_at = COALESCE(email_verified_at, $2), updated_at = $2 WHERE id = $1")
            .bind(&user_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        let (email,): (String,) = sqlx::query_as("SELECT email FROM users WHERE id = $1")
            .bind(&user_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(sql_failure)?;
        tx.commit().await.map_err(sql_failure)?;
        tracing::info!(user.id = %user_id, "email address verified");
        Ok(email)
    }

    async fn resend_verification(
        &self,
        client: &ClientInfo,
        email: String,
    ) -> Result<(), AppError> {
        let email = normalize_email(&email)?;
        self.ensure_not_locked(&[Key::Addr(client.addr.clone())])
            .await?;
        // The same answer whether or not the account exists.
        if let Some(user) = user_by(self.store(), "email", &email)
            .await
            .map_err(store_failure)?
        {
            if !user.verified {
                self.send_token_mail(&user.id, VERIFY_EMAIL).await?;
            }
        }
        Ok(())
    }

    async fn forgot_password(&self, client: &ClientInfo, email: String) -> Result<(), AppError> {
        let email = normalize_email(&email)?;
        self.ensure_not_locked(&[Key::Addr(client.addr.clone())])
            .await?;
        if let Some(user) = user_by(self.store(), "email", &email)
            .await
            .map_err(store_failure)?
        {
            self.send_token_mail(&user.id, PASSWORD_RESET).await?;
            tracing::info!(user.id = %user.id, "password reset requested");
        }
        Ok(())
    }

    async fn reset_password(&self, token: String, new_password: String) -> Result<(), AppError> {
        // Check the link before the (slow) hash, and the policy against the account's address.
        let id = self
            .deps
            .minter
            .verify(PASSWORD_RESET, token.trim())
            .ok_or_else(bad_link)?;
        let owner: Option<(String,)> = sqlx::query_as(
            "SELECT u.email FROM email_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1",
        )
        .bind(&id)
        .fetch_optional(self.store().pool())
        .await
        .map_err(sql_failure)?;
        let (email,) = owner.ok_or_else(bad_link)?;
        password::check_policy(&new_password, &email).map_err(AppError::Invalid)?;
        let hash = password::hash_blocking(new_password)
            .await
            .map_err(|e| AppError::Internal(format!("hash-{e}")))?;
        let mut tx = self.store().begin().await.map_err(store_failure)?;
        let user_id = self.take_token(&mut tx, PASSWORD_RESET, &token).await?;
        let now = now_ms();
        sqlx::query(
            "UPDATE users SET password_hash = $2, email_verified_at = COALESCE(email_verified_at, $3), updated_at = $3 WHERE id = $1",
        )
        .bind(&user_id)
        .bind(&hash)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(sql_failure)?;
        let ended = sessions::revoke_all(&mut tx, &user_id, None)
            .await
            .map_err(store_failure)?;
        crate::audit::account_event(
            &mut tx,
            &user_id,
            "account.password_reset",
            format!("{ended} session(s) ended"),
        )
        .await
        .map_err(store_failure)?;
        tx.commit().await.map_err(sql_failure)?;
        self.deps
            .throttle
            .clear(&Key::Account(email))
            .await
            .map_err(store_failure)?;
        tracing::info!(user.id = %user_id, sessions_ended = ended, "password reset");
        Ok(())
    }

    async fn change_password(
        &self,
        caller: &Caller,
        current: String,
        new_password: String,
    ) -> Result<(), AppError> {
        let user = self
            .confirm_password(caller, current, "Your current password is not right.")
            .await?;
        password::check_policy(&new_password, &user.email).map_err(AppError::Invalid)?;
        let hash = password::hash_blocking(new_password)
            .await
            .map_err(|e| AppError::Internal(format!("hash-{e}")))?;
        let mut tx = self.store().begin().await.map_err(store_failure)?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1")
            .bind(&user.id)
            .bind(&hash)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        let ended = sessions::revoke_all(&mut tx, &user.id, Some(&caller.session))
            .await
            .map_err(store_failure)?;
        crate::audit::account_event(
            &mut tx,
            &user.id,
            "account.password_changed",
            format!("{ended} other session(s) ended"),
        )
        .await
        .map_err(store_failure)?;
        tx.commit().await.map_err(sql_failure)?;
        tracing::info!(user.id = %user.id, other_sessions_ended = ended, "password changed");
        Ok(())
    }

    async fn totp_begin(&self, caller: &Caller) -> Result<TotpEnrolment, AppError> {
        let user = user_by(self.store(), "id", &caller.user_id)
            .await
            .map_err(store_failure)?
            .ok_or(AppError::Unauthenticated)?;
        if user.totp_secret.is_some() {
            return Err(AppError::Conflict(
                "Two-factor sign-in is already on. Turn it off first to enrol a new device."
                    .to_owned(),
            ));
        }
        let secret = totp::generate_secret();
        let sealed = self.seal_totp(&user.id, &secret)?;
        sqlx::query("UPDATE users SET totp_pending = $2, updated_at = $3 WHERE id = $1")
            .bind(&user.id)
            .bind(&sealed)
            .bind(now_ms())
            .execute(self.store().pool())
            .await
            .map_err(sql_failure)?;
        let uri = totp::otpauth_uri("Mudmap", &user.email, &secret);
        Ok(TotpEnrolment {
            secret: totp::encode_secret(&secret),
            qr_svg: totp::qr_svg(&uri),
            uri,
        })
    }

    async fn totp_enable(&self, caller: &Caller, code: String) -> Result<Vec<String>, AppError> {
        let pending: Option<(Option<String>,)> =
            sqlx::query_as("SELECT totp_pending FROM users WHERE id = $1")
                .bind(&caller.user_id)
                .fetch_optional(self.store().pool())
                .await
                .map_err(sql_failure)?;
        let Some(sealed) = pending.and_then(|(p,)| p) else {
            return Err(AppError::Invalid(
                "Start the set-up again: no two-factor enrolment is in progress.".to_owned(),
            ));
        };
        let secret = self.open_totp(&caller.user_id, &sealed)?;
        let now_secs = u64::try_from(now_ms() / 1000).unwrap_or(0);
        let step = totp::verify(&secret, &code, now_secs, None).ok_or_else(|| {
            AppError::Invalid(
                "That code is not right. Enter the 6 digits your app shows now; if it keeps failing, check the clock of your device.".to_owned(),
            )
        })?;
        let codes = totp::generate_recovery_codes();
        let now = now_ms();
        let mut tx = self.store().begin().await.map_err(store_failure)?;
        let steps = async {
            sqlx::query(
                "UPDATE users SET totp_secret = totp_pending, totp_pending = NULL, totp_enabled_at = $2, \
                 totp_last_step = $3, updated_at = $2 WHERE id = $1",
            )
            .bind(&caller.user_id)
            .bind(now)
            .bind(step)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
                .bind(&caller.user_id)
                .execute(&mut *tx)
                .await?;
            for code in &codes {
                sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                    .bind(&caller.user_id)
                    .bind(self.recovery_fingerprint(code))
                    .execute(&mut *tx)
                    .await?;
            }
            Ok::<_, sqlx::Error>(())
        };
        steps.await.map_err(sql_failure)?;
        crate::audit::account_event(
            &mut tx,
            &caller.user_id,
            "account.two_factor_on",
            String::new(),
        )
        .await
        .map_err(store_failure)?;
        tx.commit().await.map_err(sql_failure)?;
        tracing::info!(user.id = %caller.user_id, "two-factor sign-in turned on");
        Ok(codes)
    }

    async fn totp_disable(&self, caller: &Caller, password_input: String) -> Result<(), AppError> {
        let user = self
            .confirm_password(caller, password_input, "Your password is not right.")
            .await?;
        let mut tx = self.store().begin().await.map_err(store_failure)?;
        sqlx::query(
            "UPDATE users SET totp_secret = NULL, totp_pending = NULL, totp_enabled_at = NULL, totp_last_step = NULL, updated_at = $2 WHERE id = $1",
        )
        .bind(&user.id)
        .bind(now_ms())
        .execute(&mut *tx)
        .await
        .map_err(sql_failure)?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1")
            .bind(&user.id)
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        crate::audit::account_event(&mut tx, &user.id, "account.two_factor_off", String::new())
            .await
            .map_err(store_failure)?;
        tx.commit().await.map_err(sql_failure)?;
        tracing::info!(user.id = %user.id, "two-factor sign-in turned off");
        Ok(())
    }
}

impl AccountService {
    /// Registration through an invitation link: the link proves the address, so the account is
    /// verified at once, joins the inviting organisation with the invited role, and is signed in.
    async fn register_invited(
        &self,
        client: &ClientInfo,
        email: String,
        password: String,
        token: &str,
    ) -> Result<(Registered, Option<String>), AppError> {
        let invitation = crate::orgs::pending_invitation(&self.deps, token).await?;
        if invitation.email != email {
            return Err(AppError::Invalid(format!(
                "This invitation was sent to {}. Register with that address, or ask for an invitation to {email}.",
                invitation.email
            )));
        }
        let hash = password::hash_blocking(password)
            .await
            .map_err(|e| AppError::Internal(format!("hash-{e}")))?;
        let mut tx = self.store().begin().await.map_err(store_failure)?;
        let user_id = match rows::insert_user(&mut tx, &email, &hash, true).await {
            Ok(id) => id,
            Err(e) if rows::is_unique_violation(&e) => {
                return Err(AppError::Conflict(format!(
                    "An account for {email} exists already. Sign in to accept the invitation."
                )));
            }
            Err(e) => return Err(store_failure(e)),
        };
        crate::orgs::join(&self.deps, &mut tx, &invitation, &user_id).await?;
        self.deps.queue.commit(tx).await.map_err(store_failure)?;
        tracing::info!(user.id = %user_id, org.id = %invitation.org_id, "account registered through an invitation");
        let cookie = self.sign_in(&user_id, client).await?;
        Ok((
            Registered::Joined {
                org_name: invitation.org_name.clone(),
                role: invitation.role,
            },
            Some(cookie),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_or_refused_with_a_reason() {
        assert_eq!(
            normalize_email("  Jane.Doe@Example.COM ").unwrap(),
            "jane.doe@example.com"
        );
        for bad in [
            "",
            "jane",
            "jane@",
            "@example.com",
            "jane@localhost",
            "ja ne@example.com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_paths_stay_on_this_site() {
        assert_eq!(safe_next(Some("/settings".into())), "/settings");
        assert_eq!(safe_next(Some("//evil.example".into())), "/");
        assert_eq!(safe_next(Some("https://evil.example".into())), "/");
        assert_eq!(safe_next(Some("/\\evil".into())), "/");
        assert_eq!(safe_next(None), "/");
    }
}
