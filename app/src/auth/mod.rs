//! Signing up, in and out; email verification; password reset and change; two-factor. Types and
//! server functions live here, pages in [`pages`]. Every rule (password policy, throttling, token
//! expiry) is enforced by the server's account service; the browser only shows its answers.

pub mod pages;
pub mod settings;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::roles::Role;

/// An organisation as its member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgSummary {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// The signed-in user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user_id: String,
    pub email: String,
    pub totp_enabled: bool,
    pub orgs: Vec<OrgSummary>,
    /// The organisation every page and action is scoped to (None only for a user in none).
    pub current: Option<OrgSummary>,
}

/// What a password sign-in led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoginOutcome {
    /// Signed in: go to `next`.
    SignedIn { next: String },
    /// The password was right; a code from the authenticator app (or a recovery code) is owed.
    SecondFactor,
}

/// What registering led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Registered {
    /// A verification link went to this address; sign-in works once it is opened.
    VerificationSent { email: String },
    /// Registered through an invitation (which proved the address): signed in and a member.
    Joined { org_name: String, role: Role },
}

/// A two-factor secret being enrolled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpEnrolment {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    /// `otpauth://` URI (what the QR code encodes).
    pub uri: String,
    /// The QR code as an SVG document, when available.
    pub qr_svg: Option<String>,
}

/// The signed-in user, loaded once per page by the layout and shared through context.
pub type MeResource = Resource<Result<Option<Me>, AppError>>;

/// Load the signed-in user and share it with every component below (done once, by the layout).
pub fn provide_me() -> MeResource {
    let me = Resource::new(|| (), |()| current_user());
    provide_context(me);
    me
}

/// The signed-in user, as loaded by the layout.
pub fn use_me() -> MeResource {
    use_context::<MeResource>().unwrap_or_else(provide_me)
}

/// The caller's role in the current organisation (None while loading or signed out). It reads
/// the layout's resource: use it inside a `<Transition>`, so the server's HTML and the browser's
/// first render agree. The UI only hides what the server would refuse anyway.
pub fn use_role() -> Signal<Option<crate::roles::Role>> {
    let me = use_me();
    Signal::derive(move || {
        me.get()
            .and_then(Result::ok)
            .flatten()
            .and_then(|m| m.current)
            .map(|o| o.role)
    })
}

/// The signed-in user, or None.
#[server(prefix = "/api", endpoint = "auth/me")]
pub async fn current_user() -> Result<Option<Me>, AppError> {
    use crate::services::{optional_caller, respond, services};
    let Some(caller) = optional_caller() else {
        return Ok(None);
    };
    respond(services()?.accounts.me(&caller).await.map(Some))
}

#[server(prefix = "/api", endpoint = "auth/register")]
pub async fn register(
    email: String,
    password: String,
    org_name: String,
    invitation: Option<String>,
) -> Result<Registered, AppError> {
    use crate::services::{client_info, respond, services, set_cookie};
    let services = services()?;
    let result = services
        .accounts
        .register(&client_info(), email, password, org_name, invitation)
        .await;
    respond(result.map(|(registered, cookie)| {
        if let Some(cookie) = cookie {
            set_cookie(&cookie);
        }
        registered
    }))
}

#[server(prefix = "/api", endpoint = "auth/login")]
pub async fn login(
    email: String,
    password: String,
    next: Option<String>,
) -> Result<LoginOutcome, AppError> {
    use crate::services::{client_info, respond, services, set_cookie};
    let result = services()?
        .accounts
        .login(&client_info(), email, password, next)
        .await;
    respond(result.map(|(outcome, cookie)| {
        set_cookie(&cookie);
        outcome
    }))
}

/// The second step of signing in: a code from the authenticator app, or a recovery code.
#[server(prefix = "/api", endpoint = "auth/login-code")]
pub async fn login_code(code: String, next: Option<String>) -> Result<LoginOutcome, AppError> {
    use crate::services::{client_info, pending_caller, respond, services, set_cookie};
    let caller = respond(pending_caller())?;
    let result = services()?
        .accounts
        .login_code(&client_info(), &caller, code, next)
        .await;
    respond(result.map(|(outcome, cookie)| {
        set_cookie(&cookie);
        outcome
    }))
}

#[server(prefix = "/api", endpoint = "auth/logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::services::{optional_session, respond, services, set_cookie};
    let cookie = services()?.accounts.logout(optional_session()).await;
    respond(cookie.map(|cookie| set_cookie(&cookie)))
}

#[server(prefix = "/api", endpoint = "auth/verify-email")]
pub async fn verify_email(token: String) -> Result<String, AppError> {
    use crate::services::{respond, services};
    respond(services()?.accounts.verify_email(token).await)
}

#[server(prefix = "/api", endpoint = "auth/resend-verification")]
pub async fn resend_verification(email: String) -> Result<(), AppError> {
    use crate::services::{client_info, respond, services};
    respond(
        services()?
            .accounts
            .resend_verification(&client_info(), email)
            .await,
    )
}

#[server(prefix = "/api", endpoint = "auth/forgot-password")]
pub async fn forgot_password(email: String) -> Result<(), AppError> {
    use crate::services::{client_info, respond, services};
    respond(
        services()?
            .accounts
            .forgot_password(&client_info(), email)
            .await,
    )
}

#[server(prefix = "/api", endpoint = "auth/reset-password")]
pub async fn reset_password(token: String, password: String) -> Result<(), AppError> {
    use crate::services::{respond, services};
    respond(services()?.accounts.reset_password(token, password).await)
}

#[server(prefix = "/api", endpoint = "auth/change-password")]
pub async fn change_password(current: String, password: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(
        services()?
            .accounts
            .change_password(&caller, current, password)
            .await,
    )
}

#[server(prefix = "/api", endpoint = "auth/totp-begin")]
pub async fn totp_begin() -> Result<TotpEnrolment, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.accounts.totp_begin(&caller).await)
}

/// Confirm enrolment with a first code; returns the recovery codes (shown once).
#[server(prefix = "/api", endpoint = "auth/totp-enable")]
pub async fn totp_enable(code: String) -> Result<Vec<String>, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.accounts.totp_enable(&caller, code).await)
}

#[server(prefix = "/api", endpoint = "auth/totp-disable")]
pub async fn totp_disable(password: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.accounts.totp_disable(&caller, password).await)
}
