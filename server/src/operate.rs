//! Live reads and actions on one active device, over its resident agent channel: the Status tab's
//! tables (DHCP leases, ARP, packages — read in parallel, so one round trip), service control,
//! and reboot / shutdown. The caller's role is checked before anything is sent, every action is
//! audited, and a firewall's refusal comes back as a sentence.

use app::devices::detail::StatusTables;
use app::devices::status::{ArpTable, DhcpLeases, Packages, PowerAccepted, Service};
use app::devices::{Device, DeviceState};
use app::error::AppError;
use app::services::Caller;
use serde_json::json;

use crate::agent::protocol::ErrorCode;
use crate::audit;
use crate::monitor::outages::{Outage, Outages};
use crate::services::{sql_failure, store_failure};
use crate::ssh::{DeviceId, Engine, SshError};
use crate::store::{now_ms, Store};

/// Refuse anything but an active device, with what to do about it.
fn require_active(device: &Device, doing: &str) -> Result<(), AppError> {
    match device.state {
        DeviceState::Active => Ok(()),
        DeviceState::Quarantined => Err(AppError::Conflict(format!(
            "{} is quarantined (its host key changed): re-activate it before {doing}.",
            device.name
        ))),
        DeviceState::Inactive | DeviceState::Activating => Err(AppError::Invalid(format!(
            "{} is not active: activate it before {doing}.",
            device.name
        ))),
    }
}

/// An engine failure as the sentence the person sees.
fn unreachable(device: &Device, doing: &str, error: SshError) -> AppError {
    match error {
        SshError::AgentError { code, message } => match code {
            ErrorCode::InvalidParams => AppError::Invalid(message),
            ErrorCode::UnknownMethod => AppError::Conflict(format!(
                "The agent on {} is too old for {doing}; it is updated on the next reconnect.",
                device.name
            )),
            _ => AppError::Unavailable(format!(
                "{} could not finish {doing}: {message}.",
                device.name
            )),
        },
        SshError::NoRoot { .. } => AppError::Conflict(format!(
            "Mudmap's key on {} has no root access, so it cannot do {doing}: re-activate the device (Devices → Activate) with the admin password.",
            device.name
        )),
        SshError::Unsupported { .. } => AppError::Conflict(format!(
            "The agent on {} is too old for {doing}; Mudmap updates it when it next connects. Try again in a minute.",
            device.name
        )),
        other => AppError::Unavailable(format!(
            "{} could not be reached for {doing}: {other}.",
            device.name
        )),
    }
}

async fn audited(
    store: &Store,
    caller: &Caller,
    org_id: &str,
    action: &str,
    device: &Device,
    detail: String,
) -> Result<(), AppError> {
    let mut tx = store.begin().await.map_err(store_failure)?;
    audit::by_caller(&mut tx, Some(org_id), caller, action, &device.name, detail).await?;
    tx.commit().await.map_err(sql_failure)
}

/// DHCP leases, ARP table and packages, asked for at once.
pub async fn tables(engine: &Engine, device: &Device) -> Result<StatusTables, AppError> {
    let doing = "reading its status tables";
    require_active(device, doing)?;
    let id = DeviceId::new(device.id.as_str());
    let (leases, arp, packages) = tokio::join!(
        engine.call::<DhcpLeases>(&id, "dhcp.leases", json!({})),
        engine.call::<ArpTable>(&id, "arp.table", json!({})),
        engine.call::<Packages>(&id, "packages.list", json!({})),
    );
    let failed = |e| unreachable(device, doing, e);
    Ok(StatusTables {
        leases: leases.map_err(failed)?.leases,
        arp: arp.map_err(failed)?.entries,
        packages: packages.map_err(failed)?.packages,
        read_at_ms: now_ms(),
    })
}

/// Start, stop or restart one service.
pub async fn control_service(
    store: &Store,
    engine: &Engine,
    caller: &Caller,
    org_id: &str,
    device: &Device,
    service: &str,
    action: &str,
) -> Result<Service, AppError> {
    let doing = format!("{action} {service}");
    require_active(device, &format!("controlling its services ({doing})"))?;
    let result = engine
        .call::<Service>(
            &DeviceId::new(device.id.as_str()),
            "service.control",
            json!({ "name": service, "action": action }),
        )
        .await
        .map_err(|e| match e {
            SshError::AgentError {
                code: ErrorCode::NotFound,
                ..
            } => AppError::NotFound(format!("The service {service}")),
            other => unreachable(device, &doing, other),
        })?;
    audited(
        store,
        caller,
        org_id,
        &format!("service.{action}"),
        device,
        format!(
            "{service}: asked to {action}; the firewall reports it {}",
            result.status
        ),
    )
    .await?;
    tracing::info!(device.id = %device.id, service = %service, action = %action, status = %result.status, "service controlled");
    Ok(result)
}

/// Reboot or shut down: the typed confirmation must be the device's name; once the firewall has
/// accepted, the monitor is told to expect the outage.
#[allow(clippy::too_many_arguments)]
pub async fn power(
    store: &Store,
    engine: &Engine,
    outages: &Outages,
    caller: &Caller,
    org_id: &str,
    device: &Device,
    action: &str,
    confirm: &str,
) -> Result<(), AppError> {
    let (outage, method) = match action {
        "reboot" => (Outage::Reboot, "diag.reboot"),
        "shutdown" => (Outage::Shutdown, "diag.shutdown"),
        other => {
            return Err(AppError::Invalid(format!(
                "\"{other}\" is not reboot or shutdown."
            )))
        }
    };
    if confirm.trim() != device.name {
        return Err(AppError::Invalid(format!(
            "Type the device's name, {}, exactly to confirm the {action}.",
            device.name
        )));
    }
    require_active(device, &format!("a {action}"))?;
    let id = DeviceId::new(device.id.as_str());
    let accepted = engine
        .call::<PowerAccepted>(&id, method, json!({}))
        .await
        .map_err(|e| unreachable(device, &format!("a {action}"), e))?;
    // The firewall acts a second after answering; the monitor picks this up within a tick.
    outages.expect(id, outage, &caller.email);
    // Done is done: a failed audit write must not read as a failed reboot (and invite a second).
    if let Err(e) = audited(
        store,
        caller,
        org_id,
        &format!("device.{action}"),
        device,
        format!("the firewall accepted: {}", accepted.action),
    )
    .await
    {
        tracing::error!(device.id = %device.id, action, error = %e, "power action sent but not audited");
    }
    tracing::info!(device.id = %device.id, action, "power action sent");
    Ok(())
}
