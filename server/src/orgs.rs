//! The organisation service: switching and creating organisations, renaming and deleting one,
//! members and roles, invitations, and the organisation's jobs. Every query is scoped to the
//! caller's current organisation and every write checks the caller's role first (the role is
//! re-read from the database on each request). The last owner can neither leave nor be demoted
//! or removed.

use app::auth::OrgSummary;
use app::error::AppError;
use app::orgs::{Invitation, InvitationPreview, JobView, Member};
use app::roles::Role;
use app::services::Caller;
use sqlx::{Any, Row, Transaction};

use crate::accounts::rows::insert_org_with_owner;
use crate::accounts::service::{normalize_email, AccountDeps};
use crate::audit;
use crate::crypto::random_id;
use crate::jobs::JobState;
use crate::notify::{job_title, MailJob, INVITATION};
use crate::services::{sql_failure, store_failure};
use crate::store::{now_ms, StoreError};

/// How long an invitation link works.
pub const INVITATION_TTL_MS: i64 = 72 * 3_600_000;

pub struct OrgService {
    deps: AccountDeps,
}

impl OrgService {
    pub fn new(deps: AccountDeps) -> Self {
        Self { deps }
    }
}

/// A trimmed organisation name of 1 to 80 characters, or the reason it is not one.
pub fn validate_org_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(AppError::Invalid(
            "Enter a name for the organisation.".to_owned(),
        ));
    }
    if name.chars().count() > 80 {
        return Err(AppError::Invalid(
            "Keep the organisation's name to 80 characters or fewer.".to_owned(),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(AppError::Invalid(
            "The organisation's name cannot contain control characters.".to_owned(),
        ));
    }
    Ok(name.to_owned())
}

/// An invitation that can still be accepted.
#[derive(Debug, Clone)]
pub struct PendingInvitation {
    pub id: String,
    pub org_id: String,
    pub org_name: String,
    pub email: String,
    pub role: Role,
    pub inviter_email: Option<String>,
    pub expires_at: i64,
}

/// The invitation behind a link, if it can still be accepted; otherwise the reason why not.
pub async fn pending_invitation(
    deps: &AccountDeps,
    token: &str,
) -> Result<PendingInvitation, AppError> {
    let bad = || {
        AppError::Invalid(
            "This invitation link is not valid. Copy the whole link from the mail.".to_owned(),
        )
    };
    let id = deps
        .minter
        .verify(INVITATION, token.trim())
        .ok_or_else(bad)?;
    let row = sqlx::query(
        "SELECT i.id, i.org_id, o.name AS org_name, i.email, i.role, u.email AS inviter, i.expires_at, \
                i.accepted_at, i.revoked_at \
         FROM invitations i JOIN organisations o ON o.id = i.org_id \
         LEFT JOIN users u ON u.id = i.invited_by WHERE i.id = $1",
    )
    .bind(&id)
    .fetch_optional(deps.store.pool())
    .await
    .map_err(sql_failure)?
    .ok_or_else(bad)?;
    if row
        .try_get::<Option<i64>, _>("accepted_at")
        .map_err(sql_failure)?
        .is_some()
    {
        return Err(AppError::Conflict(
            "This invitation was already accepted. Sign in to get to the organisation.".to_owned(),
        ));
    }
    if row
        .try_get::<Option<i64>, _>("revoked_at")
        .map_err(sql_failure)?
        .is_some()
    {
        return Err(AppError::Invalid(
            "This invitation was withdrawn. Ask the organisation's admins for a new one."
                .to_owned(),
        ));
    }
    let expires_at: i64 = row.try_get("expires_at").map_err(sql_failure)?;
    if expires_at <= now_ms() {
        return Err(AppError::Invalid(
            "This invitation has expired. Ask the organisation's admins to invite you again."
                .to_owned(),
        ));
    }
    let role: String = row.try_get("role").map_err(sql_failure)?;
    Ok(PendingInvitation {
        id: row.try_get("id").map_err(sql_failure)?,
        org_id: row.try_get("org_id").map_err(sql_failure)?,
        org_name: row.try_get("org_name").map_err(sql_failure)?,
        email: row.try_get("email").map_err(sql_failure)?,
        role: Role::parse(&role).unwrap_or(Role::Viewer),
        inviter_email: row.try_get("inviter").map_err(sql_failure)?,
        expires_at,
    })
}

/// Make `user_id` a member through `invitation` in `tx`: membership, invitation accepted, audit,
/// a welcome mail to the member and a notice to each owner.
pub async fn join(
    deps: &AccountDeps,
    tx: &mut Transaction<'static, Any>,
    invitation: &PendingInvitation,
    user_id: &str,
) -> Result<(), AppError> {
    let now = now_ms();
    let accepted = sqlx::query(
        "UPDATE invitations SET accepted_at = $2, accepted_by = $3 \
         WHERE id = $1 AND accepted_at IS NULL AND revoked_at IS NULL",
    )
    .bind(&invitation.id)
    .bind(now)
    .bind(user_id)
    .execute(&mut **tx)
    .await
    .map_err(sql_failure)?;
    if accepted.rows_affected() != 1 {
        return Err(AppError::Conflict(
            "This invitation was just accepted or withdrawn.".to_owned(),
        ));
    }
    sqlx::query(
        "INSERT INTO memberships (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, user_id) DO NOTHING",
    )
    .bind(&invitation.org_id)
    .bind(user_id)
    .bind(invitation.role.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await
    .map_err(sql_failure)?;
    audit::record(
        tx,
        audit::Entry {
            org_id: Some(&invitation.org_id),
            actor_id: Some(user_id),
            action: "member.joined",
            subject: &invitation.email,
            detail: format!("role {}", invitation.role.as_str()),
        },
    )
    .await
    .map_err(store_failure)?;
    let org = Some(invitation.org_id.as_str());
    MailJob::Welcome {
        org_id: invitation.org_id.clone(),
        user_id: user_id.to_owned(),
    }
    .enqueue(&deps.queue, tx, org)
    .await
    .map_err(store_failure)?;
    let owners: Vec<(String,)> = sqlx::query_as(
        "SELECT user_id FROM memberships WHERE org_id = $1 AND role = 'owner' AND user_id <> $2",
    )
    .bind(&invitation.org_id)
    .bind(user_id)
    .fetch_all(&mut **tx)
    .await
    .map_err(sql_failure)?;
    for (owner,) in owners {
        MailJob::MemberJoined {
            org_id: invitation.org_id.clone(),
            member_id: user_id.to_owned(),
            recipient_id: owner,
        }
        .enqueue(&deps.queue, tx, org)
        .await
        .map_err(store_failure)?;
    }
    Ok(())
}

/// A member's current role in an organisation.
async fn role_of(
    tx: &mut Transaction<'static, Any>,
    org_id: &str,
    user_id: &str,
) -> Result<Option<(Role, String)>, AppError> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT m.role, u.email FROM memberships m JOIN users u ON u.id = m.user_id \
         WHERE m.org_id = $1 AND m.user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(&mut **tx)
    .await
    .map_err(sql_failure)?;
    Ok(row.and_then(|(role, email)| Role::parse(&role).map(|r| (r, email))))
}

async fn owner_count(tx: &mut Transaction<'static, Any>, org_id: &str) -> Result<i64, AppError> {
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM memberships WHERE org_id = $1 AND role = 'owner'")
            .bind(org_id)
            .fetch_one(&mut **tx)
            .await
            .map_err(sql_failure)?;
    Ok(n)
}

impl OrgService {
    async fn begin(&self) -> Result<Transaction<'static, Any>, AppError> {
        self.deps.store.begin().await.map_err(store_failure)
    }

    async fn commit(&self, tx: Transaction<'static, Any>) -> Result<(), AppError> {
        self.deps.queue.commit(tx).await.map_err(store_failure)
    }
}

fn escape_like(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[async_trait::async_trait]
impl app::services::OrgService for OrgService {
    async fn switch(&self, caller: &Caller, org_id: String) -> Result<(), AppError> {
        let member: Option<(String,)> =
            sqlx::query_as("SELECT role FROM memberships WHERE org_id = $1 AND user_id = $2")
                .bind(&org_id)
                .bind(&caller.user_id)
                .fetch_optional(self.deps.store.pool())
                .await
                .map_err(sql_failure)?;
        if member.is_none() {
            return Err(AppError::NotFound("The organisation".to_owned()));
        }
        self.deps
            .sessions
            .set_org(&caller.session, &org_id)
            .await
            .map_err(store_failure)
    }

    async fn create(&self, caller: &Caller, name: String) -> Result<OrgSummary, AppError> {
        let name = validate_org_name(&name)?;
        let mut tx = self.begin().await?;
        let org_id = insert_org_with_owner(&mut tx, &name, &caller.user_id)
            .await
            .map_err(store_failure)?;
        audit::by_caller(
            &mut tx,
            Some(&org_id),
            caller,
            "org.created",
            &name,
            String::new(),
        )
        .await?;
        self.commit(tx).await?;
        self.deps
            .sessions
            .set_org(&caller.session, &org_id)
            .await
            .map_err(store_failure)?;
        Ok(OrgSummary {
            id: org_id,
            name,
            role: Role::Owner,
        })
    }

    async fn rename(&self, caller: &Caller, name: String) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let name = validate_org_name(&name)?;
        let mut tx = self.begin().await?;
        sqlx::query("UPDATE organisations SET name = $2, updated_at = $3 WHERE id = $1")
            .bind(&org.id)
            .bind(&name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "org.renamed",
            &name,
            format!("was {}", org.name),
        )
        .await?;
        self.commit(tx).await
    }

    async fn delete(&self, caller: &Caller, confirm_name: String) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_delete_org)?;
        if confirm_name.trim() != org.name {
            return Err(AppError::Invalid(format!(
                "Type the organisation's name, {}, exactly to confirm.",
                org.name
            )));
        }
        let mut tx = self.begin().await?;
        sqlx::query("DELETE FROM organisations WHERE id = $1")
            .bind(&org.id)
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        audit::by_caller(
            &mut tx,
            None,
            caller,
            "org.deleted",
            &org.name,
            format!("id {}", org.id),
        )
        .await?;
        self.commit(tx).await
    }

    async fn members(&self, caller: &Caller, search: String) -> Result<Vec<Member>, AppError> {
        let org = caller.org()?;
        let pattern = format!("%{}%", escape_like(&search.trim().to_lowercase()));
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT u.id, u.email, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE m.org_id = $1 AND u.email LIKE $2 ESCAPE '\\' ORDER BY u.email LIMIT 500",
        )
        .bind(&org.id)
        .bind(pattern)
        .fetch_all(self.deps.store.pool())
        .await
        .map_err(sql_failure)?;
        let mut members: Vec<Member> = rows
            .into_iter()
            .filter_map(|(user_id, email, role, joined)| {
                Role::parse(&role).map(|role| Member {
                    is_you: user_id == caller.user_id,
                    user_id,
                    email,
                    role,
                    joined_at_ms: joined,
                })
            })
            .collect();
        members.sort_by_key(|m| (Role::ALL.iter().position(|r| *r == m.role), m.email.clone()));
        Ok(members)
    }

    async fn set_role(&self, caller: &Caller, user_id: String, role: Role) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let mut tx = self.begin().await?;
        let (current, email) = role_of(&mut tx, &org.id, &user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("That member".to_owned()))?;
        if !org.role.can_grant(current) || !org.role.can_grant(role) {
            return Err(AppError::Forbidden);
        }
        if current == role {
            return Ok(());
        }
        if current == Role::Owner && owner_count(&mut tx, &org.id).await? <= 1 {
            return Err(AppError::Conflict(format!(
                "{email} is the last owner. Make someone else an owner first."
            )));
        }
        sqlx::query("UPDATE memberships SET role = $3 WHERE org_id = $1 AND user_id = $2")
            .bind(&org.id)
            .bind(&user_id)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "member.role_changed",
            &email,
            format!("{} -> {}", current.as_str(), role.as_str()),
        )
        .await?;
        self.commit(tx).await
    }

    async fn remove_member(&self, caller: &Caller, user_id: String) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let mut tx = self.begin().await?;
        let (current, email) = role_of(&mut tx, &org.id, &user_id)
            .await?
            .ok_or_else(|| AppError::NotFound("That member".to_owned()))?;
        if !org.role.can_grant(current) {
            return Err(AppError::Forbidden);
        }
        if current == Role::Owner && owner_count(&mut tx, &org.id).await? <= 1 {
            return Err(AppError::Conflict(format!(
                "{email} is the last owner and cannot be removed. Make someone else an owner first."
            )));
        }
        sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(&org.id)
            .bind(&user_id)
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "member.removed",
            &email,
            format!("was {}", current.as_str()),
        )
        .await?;
        self.commit(tx).await
    }

    async fn leave(&self, caller: &Caller) -> Result<(), AppError> {
        let org = caller.org()?;
        let mut tx = self.begin().await?;
        if org.role == Role::Owner && owner_count(&mut tx, &org.id).await? <= 1 {
            return Err(AppError::Conflict(
                "You are the last owner. Make someone else an owner first, or delete the organisation."
                    .to_owned(),
            ));
        }
        sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND user_id = $2")
            .bind(&org.id)
            .bind(&caller.user_id)
            .execute(&mut *tx)
            .await
            .map_err(sql_failure)?;
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "member.left",
            &caller.email,
            String::new(),
        )
        .await?;
        self.commit(tx).await
    }

    async fn invite(
        &self,
        caller: &Caller,
        email: String,
        role: Role,
    ) -> Result<Invitation, AppError> {
        let org = caller.org_where(Role::can_administer)?;
        if !org.role.can_grant(role) {
            return Err(AppError::Forbidden);
        }
        let email = normalize_email(&email)?;
        let now = now_ms();
        let id = random_id();
        let mut tx = self.begin().await?;
        let member: Option<(String,)> = sqlx::query_as(
            "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id WHERE m.org_id = $1 AND u.email = $2",
        )
        .bind(&org.id)
        .bind(&email)
        .fetch_optional(&mut *tx)
        .await
        .map_err(sql_failure)?;
        if member.is_some() {
            return Err(AppError::Conflict(format!(
                "{email} is already a member of {}.",
                org.name
            )));
        }
        // A new invitation replaces a pending one to the same address (a fresh link).
        sqlx::query(
            "UPDATE invitations SET revoked_at = $3 WHERE org_id = $1 AND email = $2 \
             AND accepted_at IS NULL AND revoked_at IS NULL",
        )
        .bind(&org.id)
        .bind(&email)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(sql_failure)?;
        sqlx::query(
            "INSERT INTO invitations (id, org_id, email, role, invited_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(&org.id)
        .bind(&email)
        .bind(role.as_str())
        .bind(&caller.user_id)
        .bind(now)
        .bind(now + INVITATION_TTL_MS)
        .execute(&mut *tx)
        .await
        .map_err(sql_failure)?;
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "member.invited",
            &email,
            format!("role {}", role.as_str()),
        )
        .await?;
        MailJob::Invitation {
            invitation_id: id.clone(),
        }
        .enqueue(&self.deps.queue, &mut tx, Some(&org.id))
        .await
        .map_err(store_failure)?;
        self.commit(tx).await?;
        Ok(Invitation {
            id,
            email,
            role,
            invited_by: Some(caller.email.clone()),
            created_at_ms: now,
            expires_at_ms: now + INVITATION_TTL_MS,
        })
    }

    async fn invitations(&self, caller: &Caller) -> Result<Vec<Invitation>, AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let rows = sqlx::query(
            "SELECT i.id, i.email, i.role, u.email AS inviter, i.created_at, i.expires_at \
             FROM invitations i LEFT JOIN users u ON u.id = i.invited_by \
             WHERE i.org_id = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $2 \
             ORDER BY i.created_at DESC",
        )
        .bind(&org.id)
        .bind(now_ms())
        .fetch_all(self.deps.store.pool())
        .await
        .map_err(sql_failure)?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get("role")?;
                Ok(Invitation {
                    id: row.try_get("id")?,
                    email: row.try_get("email")?,
                    role: Role::parse(&role).unwrap_or(Role::Viewer),
                    invited_by: row.try_get("inviter")?,
                    created_at_ms: row.try_get("created_at")?,
                    expires_at_ms: row.try_get("expires_at")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(sql_failure)
    }

    async fn revoke_invitation(&self, caller: &Caller, id: String) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let mut tx = self.begin().await?;
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE invitations SET revoked_at = $3 WHERE id = $1 AND org_id = $2 \
             AND accepted_at IS NULL AND revoked_at IS NULL RETURNING email",
        )
        .bind(&id)
        .bind(&org.id)
        .bind(now_ms())
        .fetch_optional(&mut *tx)
        .await
        .map_err(sql_failure)?;
        let Some((email,)) = row else {
            return Err(AppError::NotFound("That invitation".to_owned()));
        };
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "member.invitation_revoked",
            &email,
            String::new(),
        )
        .await?;
        self.commit(tx).await
    }

    async fn invitation_preview(
        &self,
        caller: Option<&Caller>,
        token: String,
    ) -> Result<InvitationPreview, AppError> {
        let invitation = pending_invitation(&self.deps, &token).await?;
        let exists: Option<(String,)> = sqlx::query_as("SELECT id FROM users WHERE email = $1")
            .bind(&invitation.email)
            .fetch_optional(self.deps.store.pool())
            .await
            .map_err(sql_failure)?;
        Ok(InvitationPreview {
            org_name: invitation.org_name,
            inviter_email: invitation.inviter_email,
            email: invitation.email,
            role: invitation.role,
            expires_at_ms: invitation.expires_at,
            account_exists: exists.is_some(),
            signed_in_as: caller.map(|c| c.email.clone()),
        })
    }

    async fn accept_invitation(
        &self,
        caller: &Caller,
        token: String,
    ) -> Result<OrgSummary, AppError> {
        let invitation = pending_invitation(&self.deps, &token).await?;
        if invitation.email != caller.email {
            return Err(AppError::Conflict(format!(
                "This invitation is for {}, but you are signed in as {}. Sign out, then sign in or register as {}.",
                invitation.email, caller.email, invitation.email
            )));
        }
        let mut tx = self.begin().await?;
        join(&self.deps, &mut tx, &invitation, &caller.user_id).await?;
        self.commit(tx).await?;
        self.deps
            .sessions
            .set_org(&caller.session, &invitation.org_id)
            .await
            .map_err(store_failure)?;
        tracing::info!(user.id = %caller.user_id, org.id = %invitation.org_id, "invitation accepted");
        Ok(OrgSummary {
            id: invitation.org_id,
            name: invitation.org_name,
            role: invitation.role,
        })
    }

    async fn jobs(&self, caller: &Caller, failed_only: bool) -> Result<Vec<JobView>, AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let state = failed_only.then_some(JobState::Failed);
        let rows = self
            .deps
            .queue
            .list(Some(&org.id), state, 200)
            .await
            .map_err(store_failure)?;
        Ok(rows
            .into_iter()
            .map(|row| JobView {
                title: job_title(&row.kind, &row.payload),
                id: row.id,
                state: row.state.as_str().to_owned(),
                attempts: row.attempts,
                max_attempts: row.max_attempts,
                last_error: row.last_error,
                updated_at_ms: row.updated_at,
                run_at_ms: row.run_at,
            })
            .collect())
    }

    async fn retry_job(&self, caller: &Caller, id: String) -> Result<(), AppError> {
        let org = caller.org_where(Role::can_administer)?;
        let queue = &self.deps.queue;
        let mut tx = self.deps.store.begin().await.map_err(store_failure)?;
        let retried = queue
            .retry_in(&mut tx, &id, Some(&org.id))
            .await
            .map_err(|e| match &e {
                StoreError::Query(sqlx::Error::Database(d)) if d.is_unique_violation() => {
                    AppError::Conflict("An identical job is already queued.".to_owned())
                }
                _ => store_failure(e),
            })?;
        if !retried {
            return Err(AppError::NotFound("That failed job".to_owned()));
        }
        audit::by_caller(
            &mut tx,
            Some(&org.id),
            caller,
            "job.retried",
            &id,
            String::new(),
        )
        .await?;
        queue.commit(tx).await.map_err(store_failure)?;
        tracing::info!(job.id = %id, org.id = %org.id, "failed job retried by an admin");
        Ok(())
    }
}
