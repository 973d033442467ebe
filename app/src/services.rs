//! The seam between server functions (here, compiled only with `ssr`) and the services that do
//! the work (in the `server` crate, which depends on this one, so it cannot be called directly).
//! The server puts a [`Services`] into the Leptos context of every request, and the request's
//! [`Caller`] (resolved from the session cookie by the server's middleware) and [`ClientInfo`]
//! into its extensions; server functions take them out, call one method, and hand the result to
//! [`respond`].

use std::sync::Arc;

use leptos::prelude::use_context;

use crate::auth::{LoginOutcome, Me, OrgSummary, Registered, TotpEnrolment};
use crate::devices::activation::{ActivationView, HostKeyProbe};
use crate::devices::{Device, DeviceInput};
use crate::error::AppError;
use crate::fleet::{FleetPage, FleetQuery};
use crate::groups::{Group, GroupMembership};
use crate::orgs::{Invitation, InvitationPreview, JobView, Member};
use crate::roles::Role;
use crate::system::ServerStatus;

/// Everything a server function may call. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub system: Arc<dyn SystemService>,
    pub accounts: Arc<dyn AccountService>,
    pub orgs: Arc<dyn OrgService>,
    pub devices: Arc<dyn DeviceService>,
    pub groups: Arc<dyn GroupService>,
    pub backups: Arc<dyn BackupService>,
    pub search: Arc<dyn SearchService>,
    pub audit: Arc<dyn AuditService>,
    pub changes: Arc<dyn ChangeService>,
}

/// How far a session has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// Signed in.
    Full,
    /// Password accepted; the second factor is still owed.
    SecondFactor,
}

/// The caller's access to their current organisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgAccess {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// Who is making the request: resolved once per request from the session cookie.
#[derive(Debug, Clone)]
pub struct Caller {
    /// SHA-256 of the session token (the token itself is never kept).
    pub session: String,
    pub user_id: String,
    pub email: String,
    pub stage: SessionStage,
    pub org: Option<OrgAccess>,
}

impl Caller {
    /// The current organisation, or a clear error when the user belongs to none.
    pub fn org(&self) -> Result<&OrgAccess, AppError> {
        self.org.as_ref().ok_or_else(|| {
            AppError::Invalid(
                "You are not a member of any organisation. Create one, or accept an invitation."
                    .to_owned(),
            )
        })
    }

    /// The current organisation, if the caller's role there satisfies `allowed`.
    pub fn org_where(&self, allowed: impl Fn(Role) -> bool) -> Result<&OrgAccess, AppError> {
        let org = self.org()?;
        if allowed(org.role) {
            Ok(org)
        } else {
            Err(AppError::Forbidden)
        }
    }
}

/// Where the request came from (for throttling and the audit log).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub addr: String,
}

/// Instance health and identity.
#[async_trait::async_trait]
pub trait SystemService: Send + Sync {
    async fn status(&self) -> Result<ServerStatus, AppError>;
}

/// Accounts and sessions. Methods that start or end a session return the `Set-Cookie` value.
#[async_trait::async_trait]
pub trait AccountService: Send + Sync {
    async fn me(&self, caller: &Caller) -> Result<Me, AppError>;
    async fn register(
        &self,
        client: &ClientInfo,
        email: String,
        password: String,
        org_name: String,
        invitation: Option<String>,
    ) -> Result<(Registered, Option<String>), AppError>;
    async fn login(
        &self,
        client: &ClientInfo,
        email: String,
        password: String,
        next: Option<String>,
    ) -> Result<(LoginOutcome, String), AppError>;
    async fn login_code(
        &self,
        client: &ClientInfo,
        caller: &Caller,
        code: String,
        next: Option<String>,
    ) -> Result<(LoginOutcome, String), AppError>;
    /// Ends the session (if any) and returns the cookie that clears it.
    async fn logout(&self, session: Option<String>) -> Result<String, AppError>;
    async fn verify_email(&self, token: String) -> Result<String, AppError>;
    async fn resend_verification(&self, client: &ClientInfo, email: String)
        -> Result<(), AppError>;
    async fn forgot_password(&self, client: &ClientInfo, email: String) -> Result<(), AppError>;
    async fn reset_password(&self, token: String, password: String) -> Result<(), AppError>;
    async fn change_password(
        &self,
        caller: &Caller,
        current: String,
        password: String,
    ) -> Result<(), AppError>;
    async fn totp_begin(&self, caller: &Caller) -> Result<TotpEnrolment, AppError>;
    async fn totp_enable(&self, caller: &Caller, code: String) -> Result<Vec<String>, AppError>;
    async fn totp_disable(&self, caller: &Caller, password: String) -> Result<(), AppError>;
}

/// Organisations, members, invitations and the organisation's jobs.
#[async_trait::async_trait]
pub trait OrgService: Send + Sync {
    async fn switch(&self, caller: &Caller, org_id: String) -> Result<(), AppError>;
    async fn create(&self, caller: &Caller, name: String) -> Result<OrgSummary, AppError>;
    async fn rename(&self, caller: &Caller, name: String) -> Result<(), AppError>;
    async fn delete(&self, caller: &Caller, confirm_name: String) -> Result<(), AppError>;
    async fn members(&self, caller: &Caller, search: String) -> Result<Vec<Member>, AppError>;
    async fn set_role(&self, caller: &Caller, user_id: String, role: Role) -> Result<(), AppError>;
    async fn remove_member(&self, caller: &Caller, user_id: String) -> Result<(), AppError>;
    async fn leave(&self, caller: &Caller) -> Result<(), AppError>;
    async fn invite(
        &self,
        caller: &Caller,
        email: String,
        role: Role,
    ) -> Result<Invitation, AppError>;
    async fn invitations(&self, caller: &Caller) -> Result<Vec<Invitation>, AppError>;
    async fn revoke_invitation(&self, caller: &Caller, id: String) -> Result<(), AppError>;
    async fn invitation_preview(
        &self,
        caller: Option<&Caller>,
        token: String,
    ) -> Result<InvitationPreview, AppError>;
    async fn accept_invitation(
        &self,
        caller: &Caller,
        token: String,
    ) -> Result<OrgSummary, AppError>;
    async fn jobs(&self, caller: &Caller, failed_only: bool) -> Result<Vec<JobView>, AppError>;
    async fn retry_job(&self, caller: &Caller, id: String) -> Result<(), AppError>;
}

/// Devices of the caller's current organisation.
#[async_trait::async_trait]
pub trait DeviceService: Send + Sync {
    async fn list(&self, caller: &Caller) -> Result<Vec<Device>, AppError>;
    async fn add(&self, caller: &Caller, input: DeviceInput) -> Result<Device, AppError>;
    async fn update(
        &self,
        caller: &Caller,
        id: String,
        input: DeviceInput,
    ) -> Result<Device, AppError>;
    /// Delete a device; unless `force`, Mudmap's key line and agent are removed from it first (and
    /// the removal proven).
    async fn delete(&self, caller: &Caller, id: String, force: bool) -> Result<(), AppError>;
    async fn probe(&self, caller: &Caller, id: String) -> Result<HostKeyProbe, AppError>;
    /// Start an activation run; returns its id.
    async fn activate(
        &self,
        caller: &Caller,
        request: ActivationRequest,
    ) -> Result<String, AppError>;
    async fn activation(&self, caller: &Caller, id: String) -> Result<ActivationView, AppError>;
    async fn detail(
        &self,
        caller: &Caller,
        id: String,
    ) -> Result<crate::devices::detail::DeviceDetail, AppError>;
    /// Start, stop or restart a service on a device (operators and above).
    async fn control_service(
        &self,
        caller: &Caller,
        id: String,
        service: String,
        action: String,
    ) -> Result<crate::devices::status::Service, AppError>;
    /// DHCP leases, ARP table and installed packages, read from the device now.
    async fn tables(
        &self,
        caller: &Caller,
        id: String,
    ) -> Result<crate::devices::detail::StatusTables, AppError>;
    /// Reboot or shut down a device (owners and admins); `confirm` is its name, typed.
    async fn power(
        &self,
        caller: &Caller,
        id: String,
        action: String,
        confirm: String,
    ) -> Result<(), AppError>;
    /// One page of the fleet table, from the monitor's stored status.
    async fn fleet(&self, caller: &Caller, query: FleetQuery) -> Result<FleetPage, AppError>;
}

/// Device groups of the caller's current organisation.
#[async_trait::async_trait]
pub trait GroupService: Send + Sync {
    async fn list(&self, caller: &Caller) -> Result<Vec<Group>, AppError>;
    async fn get(&self, caller: &Caller, id: String) -> Result<GroupMembership, AppError>;
    async fn create(&self, caller: &Caller, name: String) -> Result<Group, AppError>;
    async fn rename(&self, caller: &Caller, id: String, name: String) -> Result<Group, AppError>;
    async fn delete(&self, caller: &Caller, id: String) -> Result<(), AppError>;
    async fn set_member(
        &self,
        caller: &Caller,
        id: String,
        device_id: String,
        member: bool,
    ) -> Result<Group, AppError>;
}

/// Configuration backups of the caller's organisation's devices.
#[async_trait::async_trait]
pub trait BackupService: Send + Sync {
    /// A device's revisions, newest first (any member).
    async fn revisions(
        &self,
        caller: &Caller,
        device_id: String,
    ) -> Result<Vec<crate::devices::backups::Revision>, AppError>;
    /// Queue a backup now (operators and above; audited).
    async fn back_up(&self, caller: &Caller, device_id: String) -> Result<(), AppError>;
    /// Two revisions of one device compared (any member; `reveal`: owners and admins, audited).
    async fn compare(
        &self,
        caller: &Caller,
        from: Option<String>,
        to: String,
        reveal: bool,
    ) -> Result<crate::devices::backups::Comparison, AppError>;
    /// Clear a device's "Changed outside Mudmap" mark (operators and above; audited).
    async fn acknowledge_drift(&self, caller: &Caller, device_id: String) -> Result<(), AppError>;
    /// A revision's configuration file, secrets included (owners and admins; audited).
    async fn download(
        &self,
        caller: &Caller,
        revision_id: String,
    ) -> Result<crate::devices::backups::ConfigFile, AppError>;
}

/// Fleet-wide search over each device's newest configuration.
#[async_trait::async_trait]
pub trait SearchService: Send + Sync {
    /// Run a query (its text form, one filter per line) in the caller's organisation (any member).
    async fn search(
        &self,
        caller: &Caller,
        query: String,
    ) -> Result<crate::search::SearchAnswer, AppError>;
}

/// The organisation's audit log (owners and admins).
#[async_trait::async_trait]
pub trait AuditService: Send + Sync {
    /// A page of entries matching `filter`, newest first, continuing after `after` ('' first).
    async fn list(
        &self,
        caller: &Caller,
        filter: crate::audit::AuditFilter,
        after: String,
    ) -> Result<crate::audit::AuditPage, AppError>;

    /// Every entry matching `filter` (at most [`crate::audit::EXPORT_MAX`]) as CSV; audited.
    async fn export(
        &self,
        caller: &Caller,
        filter: crate::audit::AuditFilter,
    ) -> Result<crate::audit::AuditExport, AppError>;
}

/// Change sets (operators and above).
#[async_trait::async_trait]
pub trait ChangeService: Send + Sync {
    /// Try `operations` (their JSON form) on each device's newest backup; nothing is sent.
    async fn preview(
        &self,
        caller: &Caller,
        device_ids: Vec<String>,
        operations: String,
    ) -> Result<Vec<crate::changes::DevicePreview>, AppError>;
}

/// A device admin password on its way to the activation run: never printed, wiped when dropped.
pub struct Password(String);

impl Password {
    pub fn new(password: String) -> Self {
        Self(password)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Drop for Password {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.0);
    }
}

/// What the activation dialog sends.
#[derive(Debug)]
pub struct ActivationRequest {
    pub device_id: String,
    /// The device account that logs in with `password` (`admin` or `root` on pfSense).
    pub username: String,
    pub password: Password,
    /// The host key fingerprint the person confirmed.
    pub fingerprint: String,
}

/// The services of the current request.
pub fn services() -> Result<Services, AppError> {
    use_context::<Services>().ok_or_else(|| {
        tracing::error!("server function called without Services in context");
        AppError::Internal("no-services".to_owned())
    })
}

fn extension<T: Clone + Send + Sync + 'static>() -> Option<T> {
    use_context::<http::request::Parts>().and_then(|parts| parts.extensions.get::<T>().cloned())
}

/// The signed-in caller, or `Unauthenticated` (also while a second factor is still owed).
pub fn caller() -> Result<Caller, AppError> {
    optional_caller().ok_or(AppError::Unauthenticated)
}

/// The signed-in caller, if any.
pub fn optional_caller() -> Option<Caller> {
    extension::<Caller>().filter(|c| c.stage == SessionStage::Full)
}

/// A caller who has given the password but still owes the second factor.
pub fn pending_caller() -> Result<Caller, AppError> {
    extension::<Caller>()
        .filter(|c| c.stage == SessionStage::SecondFactor)
        .ok_or_else(|| {
            AppError::Invalid("Your sign-in has expired. Enter your password again.".to_owned())
        })
}

/// The session of this request in any stage (for signing out).
pub fn optional_session() -> Option<String> {
    extension::<Caller>().map(|c| c.session)
}

pub fn client_info() -> ClientInfo {
    extension::<ClientInfo>().unwrap_or_default()
}

/// Add a `Set-Cookie` header to the response.
pub fn set_cookie(value: &str) {
    if let (Some(options), Ok(value)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        http::HeaderValue::from_str(value),
    ) {
        options.append_header(http::header::SET_COOKIE, value);
    }
}

/// Sets the HTTP status of the response to match the error, then passes the result through.
pub fn respond<T>(result: Result<T, AppError>) -> Result<T, AppError> {
    if let Err(error) = &result {
        if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
            let status = http::StatusCode::from_u16(error.status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            options.set_status(status);
        }
    }
    result
}
