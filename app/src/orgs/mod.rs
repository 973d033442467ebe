//! Organisations: switching between them, creating and renaming one, members and their roles,
//! invitations, and the organisation's background jobs. Types and server functions live here,
//! pages in [`pages`]. Every function acts on the caller's current organisation only; the
//! server checks the caller's role on every write.

pub mod pages;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::auth::OrgSummary;
use crate::error::AppError;
use crate::roles::Role;

/// A member of the current organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub role: Role,
    pub joined_at_ms: i64,
    pub is_you: bool,
}

/// A pending invitation of the current organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invitation {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub invited_by: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// What an invitation link shows before it is accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationPreview {
    pub org_name: String,
    pub inviter_email: Option<String>,
    pub email: String,
    pub role: Role,
    pub expires_at_ms: i64,
    /// An account with the invited address exists (so: sign in, rather than register).
    pub account_exists: bool,
    /// Who is signed in in this browser, if anyone.
    pub signed_in_as: Option<String>,
}

/// A background job of the current organisation, as admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    pub id: String,
    /// What it does, in words (e.g. "Mail: invitation").
    pub title: String,
    /// queued | running | done | failed
    pub state: String,
    pub attempts: i64,
    pub max_attempts: i64,
    pub last_error: Option<String>,
    pub updated_at_ms: i64,
    pub run_at_ms: i64,
}

#[server(prefix = "/api", endpoint = "orgs/switch")]
pub async fn switch_org(org_id: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.switch(&caller, org_id).await)
}

#[server(prefix = "/api", endpoint = "orgs/create")]
pub async fn create_org(name: String) -> Result<OrgSummary, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.create(&caller, name).await)
}

#[server(prefix = "/api", endpoint = "orgs/rename")]
pub async fn rename_org(name: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.rename(&caller, name).await)
}

/// Delete the current organisation; `confirm_name` must repeat its name.
#[server(prefix = "/api", endpoint = "orgs/delete")]
pub async fn delete_org(confirm_name: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.delete(&caller, confirm_name).await)
}

#[server(prefix = "/api", endpoint = "orgs/members")]
pub async fn list_members(search: String) -> Result<Vec<Member>, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.members(&caller, search).await)
}

#[server(prefix = "/api", endpoint = "orgs/set-role")]
pub async fn set_member_role(user_id: String, role: Role) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.set_role(&caller, user_id, role).await)
}

#[server(prefix = "/api", endpoint = "orgs/remove-member")]
pub async fn remove_member(user_id: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.remove_member(&caller, user_id).await)
}

#[server(prefix = "/api", endpoint = "orgs/leave")]
pub async fn leave_org() -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.leave(&caller).await)
}

#[server(prefix = "/api", endpoint = "orgs/invite")]
pub async fn invite_member(email: String, role: Role) -> Result<Invitation, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.invite(&caller, email, role).await)
}

#[server(prefix = "/api", endpoint = "orgs/invitations")]
pub async fn list_invitations() -> Result<Vec<Invitation>, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.invitations(&caller).await)
}

#[server(prefix = "/api", endpoint = "orgs/revoke-invitation")]
pub async fn revoke_invitation(id: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.revoke_invitation(&caller, id).await)
}

/// What an invitation link offers; works signed in or not.
#[server(prefix = "/api", endpoint = "orgs/invitation-preview")]
pub async fn preview_invitation(token: String) -> Result<InvitationPreview, AppError> {
    use crate::services::{optional_caller, respond, services};
    respond(
        services()?
            .orgs
            .invitation_preview(optional_caller().as_ref(), token)
            .await,
    )
}

#[server(prefix = "/api", endpoint = "orgs/accept-invitation")]
pub async fn accept_invitation(token: String) -> Result<OrgSummary, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.accept_invitation(&caller, token).await)
}

#[server(prefix = "/api", endpoint = "orgs/jobs")]
pub async fn list_jobs(failed_only: bool) -> Result<Vec<JobView>, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.jobs(&caller, failed_only).await)
}

#[server(prefix = "/api", endpoint = "orgs/retry-job")]
pub async fn retry_job(id: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.orgs.retry_job(&caller, id).await)
}
