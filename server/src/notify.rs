//! Mail as background work. Services enqueue a [`MailJob`] (ids only) in the transaction of the
//! change that calls for it; [`MailHandler`] runs it: loads what the mail needs from the database
//! at send time, mints any link token from its row id (the token itself is never stored), renders
//! the template and hands it to the [`Mailer`]. A mail whose reason has gone (token used, invitation
//! revoked) is skipped, not sent.

use std::sync::Arc;

use app::ui::format::utc_datetime;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use crate::crypto::TokenMinter;
use crate::jobs::{Enqueued, JobContext, JobError, JobHandler, NewJob, Queue};
use crate::mail::templates::{DriftLine, Template};
use crate::mail::Mailer;
use crate::store::{now_ms, Store, StoreError};

/// The job kind of every mail.
pub const MAIL_JOB: &str = "mail";

/// Firewalls one drift mail names at most (it says when there are more).
const DRIFT_MAIL_LIMIT: i64 = 50;

/// Token purposes (also the `email_tokens.purpose` values).
pub const VERIFY_EMAIL: &str = "verify_email";
pub const PASSWORD_RESET: &str = "password_reset";
pub const INVITATION: &str = "invitation";

/// A mail to send, by reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mail", rename_all = "snake_case")]
pub enum MailJob {
    VerifyEmail {
        token_id: String,
    },
    PasswordReset {
        token_id: String,
    },
    Invitation {
        invitation_id: String,
    },
    /// To the new member of `org_id`.
    Welcome {
        org_id: String,
        user_id: String,
    },
    /// To `recipient_id` (an owner of `org_id`): `member_id` joined.
    MemberJoined {
        org_id: String,
        member_id: String,
        recipient_id: String,
    },
    /// To `recipient_id` (an owner or admin of `org_id`): `device_id` was added (registered, not
    /// yet activated). Skipped if the device is gone by the time it is sent.
    DeviceAdded {
        org_id: String,
        device_id: String,
        recipient_id: String,
    },
    /// To `recipient_id` (an owner or admin of `org_id`): `device_id` was activated.
    DeviceActivated {
        org_id: String,
        device_id: String,
        recipient_id: String,
    },
    /// To `recipient_id` (an owner or admin of `org_id`): `device_id` has been offline since
    /// `since_ms`. Enqueued with a hold-down delay; skipped if the device answered meanwhile.
    DeviceOffline {
        org_id: String,
        device_id: String,
        recipient_id: String,
        since_ms: i64,
    },
    /// To `recipient_id`: `device_id`, offline since `since_ms`, answers again. Only sent when
    /// the "offline" mail of that episode went out.
    DeviceBack {
        org_id: String,
        device_id: String,
        recipient_id: String,
        since_ms: i64,
    },
    /// To `recipient_id` (an owner or admin of `org_id`): `gateway` of `device_id` has been down
    /// since `since_ms`. Enqueued with the hold-down delay; skipped if it came back meanwhile.
    GatewayDown {
        org_id: String,
        device_id: String,
        gateway: String,
        recipient_id: String,
        since_ms: i64,
    },
    /// To `recipient_id`: `gateway`, down since `since_ms`, is up again. Only enqueued when that
    /// episode's "down" mail went out.
    GatewayUp {
        org_id: String,
        device_id: String,
        gateway: String,
        recipient_id: String,
        since_ms: i64,
    },
    /// To `recipient_id` (an owner or admin of `org_id`): configurations changed outside Mudmap,
    /// every unacknowledged mark made since `since_ms` in one mail. Enqueued with the hold-down
    /// delay, so marks made meanwhile join it; skipped if all were acknowledged meanwhile.
    ConfigDrift {
        org_id: String,
        recipient_id: String,
        since_ms: i64,
        /// Only marks no mail has covered yet (the sweep's mails).
        #[serde(default)]
        unmailed_only: bool,
    },
    /// To `recipient_id` (an owner or admin of `org_id`): `actor_id` deleted the device. The name
    /// travels in the payload because the record is gone when the mail is sent.
    DeviceDeleted {
        org_id: String,
        device_id: String,
        device_name: String,
        actor_id: String,
        recipient_id: String,
    },
}

impl MailJob {
    /// A short title for the jobs page.
    pub fn title(&self) -> &'static str {
        match self {
            MailJob::VerifyEmail { .. } => "Mail: confirm email address",
            MailJob::PasswordReset { .. } => "Mail: password reset",
            MailJob::Invitation { .. } => "Mail: invitation",
            MailJob::Welcome { .. } => "Mail: welcome",
            MailJob::MemberJoined { .. } => "Mail: new member notice",
            MailJob::DeviceAdded { .. } => "Mail: firewall added",
            MailJob::DeviceActivated { .. } => "Mail: firewall activated",
            MailJob::DeviceDeleted { .. } => "Mail: firewall deleted",
            MailJob::DeviceOffline { .. } => "Mail: firewall offline",
            MailJob::DeviceBack { .. } => "Mail: firewall back online",
            MailJob::GatewayDown { .. } => "Mail: gateway down",
            MailJob::GatewayUp { .. } => "Mail: gateway back up",
            MailJob::ConfigDrift { .. } => "Mail: changed outside Mudmap",
        }
    }

    fn dedup_key(&self) -> String {
        match self {
            MailJob::VerifyEmail { token_id } | MailJob::PasswordReset { token_id } => {
                format!("mail:token:{token_id}")
            }
            MailJob::Invitation { invitation_id } => format!("mail:invitation:{invitation_id}"),
            MailJob::Welcome { org_id, user_id } => format!("mail:welcome:{org_id}:{user_id}"),
            MailJob::MemberJoined {
                org_id,
                member_id,
                recipient_id,
            } => format!("mail:joined:{org_id}:{member_id}:{recipient_id}"),
            MailJob::DeviceAdded {
                device_id,
                recipient_id,
                ..
            } => format!("mail:added:{device_id}:{recipient_id}"),
            MailJob::DeviceActivated {
                device_id,
                recipient_id,
                ..
            } => format!("mail:activated:{device_id}:{recipient_id}"),
            MailJob::DeviceDeleted {
                device_id,
                recipient_id,
                ..
            } => format!("mail:deleted:{device_id}:{recipient_id}"),
            MailJob::DeviceOffline {
                device_id,
                recipient_id,
                since_ms,
                ..
            } => format!("mail:offline:{device_id}:{since_ms}:{recipient_id}"),
            MailJob::DeviceBack {
                device_id,
                recipient_id,
                since_ms,
                ..
            } => format!("mail:back:{device_id}:{since_ms}:{recipient_id}"),
            MailJob::GatewayDown {
                device_id,
                gateway,
                recipient_id,
                since_ms,
                ..
            } => format!("mail:gw-down:{device_id}:{gateway}:{since_ms}:{recipient_id}"),
            MailJob::GatewayUp {
                device_id,
                gateway,
                recipient_id,
                since_ms,
                ..
            } => format!("mail:gw-up:{device_id}:{gateway}:{since_ms}:{recipient_id}"),
            // One pending per person and organisation: later marks join it.
            MailJob::ConfigDrift {
                org_id,
                recipient_id,
                ..
            } => format!("mail:drift:{org_id}:{recipient_id}"),
        }
    }

    /// Enqueue in `tx` (the transaction of the change that calls for this mail).
    pub async fn enqueue(
        &self,
        queue: &Queue,
        tx: &mut Transaction<'static, Any>,
        org_id: Option<&str>,
    ) -> Result<Enqueued, StoreError> {
        self.enqueue_after(queue, tx, org_id, std::time::Duration::ZERO)
            .await
    }

    /// Enqueue in `tx`, to be sent no sooner than `delay` from now.
    pub async fn enqueue_after(
        &self,
        queue: &Queue,
        tx: &mut Transaction<'static, Any>,
        org_id: Option<&str>,
        delay: std::time::Duration,
    ) -> Result<Enqueued, StoreError> {
        let mut job = NewJob::new(MAIL_JOB, self).dedup(self.dedup_key());
        if let Some(org) = org_id {
            job = job.org(org);
        }
        if !delay.is_zero() {
            job = job.delay(delay);
        }
        queue.enqueue(tx, job).await
    }
}

/// Title of a job for the jobs page, from its kind and payload.
pub fn job_title(kind: &str, payload: &str) -> String {
    if kind == MAIL_JOB {
        if let Ok(mail) = serde_json::from_str::<MailJob>(payload) {
            return mail.title().to_owned();
        }
    }
    kind.to_owned()
}

/// Sends [`MailJob`]s.
pub struct MailHandler {
    store: Store,
    mailer: Mailer,
    minter: Arc<TokenMinter>,
    public_url: String,
}

impl MailHandler {
    pub fn new(store: Store, mailer: Mailer, minter: Arc<TokenMinter>, public_url: String) -> Self {
        Self {
            store,
            mailer,
            minter,
            public_url,
        }
    }

    /// The device's page, which every device notice links to.
    fn device_link(&self, device_id: &str) -> String {
        format!("{}/devices/{device_id}", self.public_url)
    }

    fn link(&self, path: &str, purpose: &str, id: &str) -> String {
        format!(
            "{}{path}?token={}",
            self.public_url,
            self.minter.mint(purpose, id)
        )
    }

    /// The recipient and the template, or None when the mail is no longer needed.
    async fn prepare(&self, mail: &MailJob) -> Result<Option<(String, Template)>, StoreError> {
        let now = now_ms();
        let pool = self.store.pool();
        Ok(match mail {
            MailJob::VerifyEmail { token_id } | MailJob::PasswordReset { token_id } => {
                let row = sqlx::query(
                    "SELECT t.purpose, t.expires_at, u.email FROM email_tokens t \
                     JOIN users u ON u.id = t.user_id \
                     WHERE t.id = $1 AND t.used_at IS NULL AND t.expires_at > $2",
                )
                .bind(token_id)
                .bind(now)
                .fetch_optional(pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let purpose: String = row.try_get("purpose")?;
                let email: String = row.try_get("email")?;
                let expires_at: i64 = row.try_get("expires_at")?;
                let template = if purpose == VERIFY_EMAIL {
                    Template::VerifyEmail {
                        link: self.link("/verify-email", VERIFY_EMAIL, token_id),
                    }
                } else {
                    Template::PasswordReset {
                        link: self.link("/reset-password", PASSWORD_RESET, token_id),
                        expires_minutes: u32::try_from((expires_at - now).max(0) / 60_000)
                            .unwrap_or(60),
                    }
                };
                Some((email, template))
            }
            MailJob::Invitation { invitation_id } => {
                let row = sqlx::query(
                    "SELECT i.email, i.role, i.expires_at, o.name AS org_name, u.email AS inviter \
                     FROM invitations i JOIN organisations o ON o.id = i.org_id \
                     LEFT JOIN users u ON u.id = i.invited_by \
                     WHERE i.id = $1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL AND i.expires_at > $2",
                )
                .bind(invitation_id)
                .bind(now)
                .fetch_optional(pool)
                .await?;
                let Some(row) = row else { return Ok(None) };
                let expires_at: i64 = row.try_get("expires_at")?;
                let inviter: Option<String> = row.try_get("inviter")?;
                Some((
                    row.try_get("email")?,
                    Template::Invitation {
                        org_name: row.try_get("org_name")?,
                        inviter_email: inviter.unwrap_or_else(|| "An administrator".to_owned()),
                        role: role_label(&row.try_get::<String, _>("role")?),
                        link: self.link("/invite", INVITATION, invitation_id),
                        expires_hours: u32::try_from((expires_at - now).max(0) / 3_600_000)
                            .unwrap_or(72),
                    },
                ))
            }
            MailJob::Welcome { org_id, user_id } => {
                let Some((email, org_name, role)) = membership(pool, org_id, user_id).await? else {
                    return Ok(None);
                };
                Some((
                    email,
                    Template::Welcome {
                        org_name,
                        role: role_label(&role),
                        link: format!("{}/", self.public_url),
                    },
                ))
            }
            MailJob::MemberJoined {
                org_id,
                member_id,
                recipient_id,
            } => {
                let Some((member_email, org_name, role)) =
                    membership(pool, org_id, member_id).await?
                else {
                    return Ok(None);
                };
                let Some((recipient, _, _)) = membership(pool, org_id, recipient_id).await? else {
                    return Ok(None);
                };
                Some((
                    recipient,
                    Template::MemberJoined {
                        org_name,
                        member_email,
                        role: role_label(&role),
                        link: format!("{}/settings/members", self.public_url),
                    },
                ))
            }
            MailJob::DeviceAdded {
                org_id,
                device_id,
                recipient_id,
            } => device_notice(pool, org_id, recipient_id, device_id)
                .await?
                .map(|n| {
                    n.into_mail(|org_name, device_name| Template::DeviceAdded {
                        org_name,
                        device_name,
                        link: self.device_link(device_id),
                    })
                }),
            MailJob::DeviceActivated {
                org_id,
                device_id,
                recipient_id,
            } => device_notice(pool, org_id, recipient_id, device_id)
                .await?
                // Deactivated or quarantined meanwhile: the news is stale.
                .filter(|n| n.device_state == "active")
                .map(|n| {
                    n.into_mail(|org_name, device_name| Template::DeviceActivated {
                        org_name,
                        device_name,
                        link: self.device_link(device_id),
                    })
                }),
            MailJob::DeviceDeleted {
                org_id,
                device_name,
                actor_id,
                recipient_id,
                ..
            } => {
                let Some((recipient, org_name)) =
                    admin_recipient(pool, org_id, recipient_id).await?
                else {
                    return Ok(None);
                };
                let actor: Option<(String,)> =
                    sqlx::query_as("SELECT email FROM users WHERE id = $1")
                        .bind(actor_id)
                        .fetch_optional(pool)
                        .await?;
                Some((
                    recipient,
                    Template::DeviceDeleted {
                        org_name,
                        device_name: device_name.clone(),
                        actor_email: actor.map_or_else(|| "A former member".to_owned(), |(e,)| e),
                    },
                ))
            }
            MailJob::DeviceOffline {
                org_id,
                device_id,
                recipient_id,
                since_ms,
            } => {
                let Some(notice) = device_notice(pool, org_id, recipient_id, device_id).await?
                else {
                    return Ok(None);
                };
                // Still offline, in the same episode? Then this mail goes out, and "back" may follow.
                let episode = sqlx::query(
                    "UPDATE device_status SET offline_mailed = $3 WHERE device_id = $1 \
                     AND org_id = $2 AND health = 'offline' AND health_since = $3",
                )
                .bind(device_id)
                .bind(org_id)
                .bind(since_ms)
                .execute(pool)
                .await?;
                (episode.rows_affected() == 1).then(|| {
                    notice.into_mail(|org_name, device_name| Template::DeviceOffline {
                        org_name,
                        device_name,
                        since: utc_datetime(*since_ms),
                        link: self.device_link(device_id),
                    })
                })
            }
            MailJob::DeviceBack {
                org_id,
                device_id,
                recipient_id,
                since_ms,
            } => {
                let Some(notice) = device_notice(pool, org_id, recipient_id, device_id).await?
                else {
                    return Ok(None);
                };
                // Only after this episode's "offline" mail went out, and only while it is back.
                let mailed: Option<(Option<i64>, String)> = sqlx::query_as(
                    "SELECT offline_mailed, health FROM device_status WHERE device_id = $1 AND org_id = $2",
                )
                .bind(device_id)
                .bind(org_id)
                .fetch_optional(pool)
                .await?;
                matches!(mailed, Some((Some(mailed), health)) if mailed == *since_ms && health != "offline")
                    .then(|| {
                        notice.into_mail(|org_name, device_name| Template::DeviceBack {
                            org_name,
                            device_name,
                            link: self.device_link(device_id),
                        })
                    })
            }
            MailJob::GatewayDown {
                org_id,
                device_id,
                gateway,
                recipient_id,
                since_ms,
            } => {
                let Some(notice) = device_notice(pool, org_id, recipient_id, device_id).await?
                else {
                    return Ok(None);
                };
                // Still down, in the same episode? Then this mail goes out, and "up" may follow.
                let episode = sqlx::query(
                    "UPDATE gateway_alerts SET mailed_at = $3 WHERE device_id = $1 AND gateway = $2 \
                     AND down_since = $3",
                )
                .bind(device_id)
                .bind(gateway)
                .bind(since_ms)
                .execute(pool)
                .await?;
                (episode.rows_affected() == 1).then(|| {
                    notice.into_mail(|org_name, device_name| Template::GatewayDown {
                        org_name,
                        device_name,
                        gateway: gateway.clone(),
                        since: utc_datetime(*since_ms),
                        link: self.device_link(device_id),
                    })
                })
            }
            MailJob::ConfigDrift {
                org_id,
                recipient_id,
                since_ms,
                unmailed_only,
            } => {
                let Some((recipient, org_name)) =
                    admin_recipient(pool, org_id, recipient_id).await?
                else {
                    return Ok(None);
                };
                let marks: Vec<(String, String, i64, String)> = sqlx::query_as(
                    "SELECT d.id, d.name, c.since, c.pf_username FROM config_drift c \
                     JOIN devices d ON d.id = c.device_id \
                     WHERE c.org_id = $1 AND c.since >= $2 AND ($3 = 0 OR c.mailed_at IS NULL) \
                     ORDER BY c.since, d.name LIMIT $4",
                )
                .bind(org_id)
                .bind(since_ms)
                .bind(i64::from(*unmailed_only))
                .bind(DRIFT_MAIL_LIMIT + 1)
                .fetch_all(pool)
                .await?;
                let Some(newest) = marks.iter().map(|(_, _, since, _)| *since).max() else {
                    return Ok(None);
                };
                // Only the marks this mail names count as mailed: one made while it is sent gets
                // its own mail (from the sweep, if its enqueue met this one running).
                sqlx::query(
                    "UPDATE config_drift SET mailed_at = $4 WHERE org_id = $1 AND since >= $2 \
                     AND since <= $3 AND mailed_at IS NULL",
                )
                .bind(org_id)
                .bind(since_ms)
                .bind(newest)
                .bind(now)
                .execute(pool)
                .await?;
                let more = marks.len() > usize::try_from(DRIFT_MAIL_LIMIT).unwrap_or(50);
                let link = match marks.as_slice() {
                    [(device_id, ..)] => self.device_link(device_id),
                    _ => format!("{}/fleet", self.public_url),
                };
                Some((
                    recipient,
                    Template::ConfigDrift {
                        org_name,
                        devices: marks
                            .into_iter()
                            .take(usize::try_from(DRIFT_MAIL_LIMIT).unwrap_or(50))
                            .map(|(_, name, since, by)| DriftLine {
                                device_name: name,
                                since: utc_datetime(since),
                                by,
                            })
                            .collect(),
                        more,
                        link,
                    },
                ))
            }
            MailJob::GatewayUp {
                org_id,
                device_id,
                gateway,
                recipient_id,
                ..
            } => device_notice(pool, org_id, recipient_id, device_id)
                .await?
                .map(|n| {
                    n.into_mail(|org_name, device_name| Template::GatewayUp {
                        org_name,
                        device_name,
                        gateway: gateway.clone(),
                        link: self.device_link(device_id),
                    })
                }),
        })
    }
}

/// (email, org name) of `user_id` if they are still an owner or admin of `org_id`: device notices
/// go to them only.
async fn admin_recipient(
    pool: &sqlx::AnyPool,
    org_id: &str,
    user_id: &str,
) -> Result<Option<(String, String)>, StoreError> {
    Ok(membership(pool, org_id, user_id)
        .await?
        .filter(|(_, _, role)| is_admin(role))
        .map(|(email, org_name, _)| (email, org_name)))
}

/// What every notice about a device needs: who it goes to and the names it shows.
struct DeviceNotice {
    recipient: String,
    org_name: String,
    device_name: String,
    device_state: String,
}

impl DeviceNotice {
    /// The recipient and the template `build` makes from (org name, device name).
    fn into_mail(self, build: impl FnOnce(String, String) -> Template) -> (String, Template) {
        (self.recipient, build(self.org_name, self.device_name))
    }
}

/// The notice's parts if `user_id` is still an owner or admin of `org_id` and the device still
/// exists there; otherwise the notice is no longer needed.
async fn device_notice(
    pool: &sqlx::AnyPool,
    org_id: &str,
    user_id: &str,
    device_id: &str,
) -> Result<Option<DeviceNotice>, StoreError> {
    let Some((recipient, org_name)) = admin_recipient(pool, org_id, user_id).await? else {
        return Ok(None);
    };
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT name, state FROM devices WHERE id = $1 AND org_id = $2")
            .bind(device_id)
            .bind(org_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(device_name, device_state)| DeviceNotice {
        recipient,
        org_name,
        device_name,
        device_state,
    }))
}

/// Whether a membership role receives device notices (owners and admins).
fn is_admin(role: &str) -> bool {
    app::roles::Role::parse(role).is_some_and(app::roles::Role::can_administer)
}

/// Owners and admins of an organisation: who device notices go to.
pub async fn admins_of(
    tx: &mut Transaction<'static, Any>,
    org_id: &str,
) -> Result<Vec<String>, StoreError> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT user_id, role FROM memberships WHERE org_id = $1")
            .bind(org_id)
            .fetch_all(&mut **tx)
            .await?;
    Ok(rows
        .into_iter()
        .filter(|(_, role)| is_admin(role))
        .map(|(id, _)| id)
        .collect())
}

/// (email, org name, role) of a membership, if it exists.
async fn membership(
    pool: &sqlx::AnyPool,
    org_id: &str,
    user_id: &str,
) -> Result<Option<(String, String, String)>, StoreError> {
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT u.email, o.name, m.role FROM memberships m \
         JOIN users u ON u.id = m.user_id JOIN organisations o ON o.id = m.org_id \
         WHERE m.org_id = $1 AND m.user_id = $2",
    )
    .bind(org_id)
    .bind(user_id)
    .fetch_optional(pool)
    .await?;
    Ok(row)
}

fn role_label(role: &str) -> String {
    app::roles::Role::parse(role).map_or_else(|| role.to_owned(), |r| r.label().to_owned())
}

#[async_trait::async_trait]
impl JobHandler for MailHandler {
    async fn run(&self, job: &JobContext) -> Result<(), JobError> {
        let mail: MailJob = job.payload()?;
        let prepared = self
            .prepare(&mail)
            .await
            .map_err(|e| JobError::Retry(format!("cannot read the mail's data: {e}")))?;
        let Some((to, template)) = prepared else {
            tracing::info!(
                mail = mail.title(),
                "mail no longer needed (used, revoked or expired); skipped"
            );
            return Ok(());
        };
        let rendered = template.render();
        self.mailer
            .send(&to, &rendered, &job.id)
            .await
            .map_err(|e| {
                if e.is_permanent() {
                    JobError::Permanent(e.to_string())
                } else {
                    JobError::Retry(e.to_string())
                }
            })
    }
}
