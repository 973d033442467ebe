//! The simulator's agent: answers agent-protocol requests from a device's model, exactly as the
//! real on-device agent must (same methods, same shapes, same error codes).

use std::sync::Arc;

use serde_json::Value;

use super::device::SimDevice;
use super::model::{DeviceModel, ServiceError};
use crate::activation::remote;
use crate::agent::protocol::{
    AccessEnsured, AccessRemoved, AccountRemoved, ErrorCode, Hello, PowerAccepted, Request,
    Response, PROTOCOL_VERSION,
};

/// The agent version the simulator reports.
pub const SIM_AGENT_VERSION: &str = "1.2.0";

/// Methods this agent implements.
pub const CAPABILITIES: [&str; 12] = [
    "hello",
    "status",
    "config.get",
    "access.ensure",
    "access.remove",
    "account.remove",
    "service.control",
    "dhcp.leases",
    "arp.table",
    "packages.list",
    "diag.reboot",
    "diag.shutdown",
];

/// Parse one line into a request of our protocol version, or the error response.
fn parse(line: &[u8]) -> Result<Request, Response> {
    let request: Request = serde_json::from_slice(line).map_err(|e| {
        // Try to salvage the id so the client can match the error to its request.
        let id = serde_json::from_slice::<Value>(line)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_u64));
        Response::failure(
            id,
            ErrorCode::BadRequest,
            format!("not a valid request: {e}"),
        )
    })?;
    if request.v != PROTOCOL_VERSION {
        return Err(Response::failure(
            Some(request.id),
            ErrorCode::UnsupportedVersion,
            format!(
                "this agent speaks protocol {PROTOCOL_VERSION}, not {}",
                request.v
            ),
        ));
    }
    Ok(request)
}

/// The uid a legacy (pre-1.2.0) service account's agent runs as.
pub const LEGACY_UID: u32 = 2000;

/// Handle one line for a whole device, for an agent running as root (`root`) or as the legacy
/// service account: the access methods change the device's SSH access; the rest read its model.
pub fn handle_device_line(device: &Arc<SimDevice>, line: &[u8], root: bool) -> Response {
    let request = match parse(line) {
        Ok(r) => r,
        Err(response) => return response,
    };
    if !root && request.method != "hello" {
        return Response::failure(
            Some(request.id),
            ErrorCode::NotRoot,
            format!("the Mudmap agent runs as uid {LEGACY_UID}, not root: Mudmap's key on this firewall has no root access; re-activate the device in Mudmap"),
        );
    }
    let line_param = || {
        request
            .params
            .get("authorized_key")
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let invalid =
        |message: &str| Response::failure(Some(request.id), ErrorCode::InvalidParams, message);
    match request.method.as_str() {
        "hello" => match device.model.lock() {
            Ok(model) => hello(&model, &request, if root { 0 } else { LEGACY_UID }),
            Err(_) => Response::failure(Some(request.id), ErrorCode::Internal, "model lock"),
        },
        "access.ensure" => {
            if device.faults().account_fails {
                return Response::failure(
                    Some(request.id),
                    ErrorCode::WriteFailed,
                    "write_config() failed: the key was not saved",
                );
            }
            match device.access_ensure(line_param()) {
                Ok(done) => Response::success(
                    request.id,
                    &AccessEnsured {
                        created: done.created,
                        others: done.others,
                        config_hash: config_hash(device),
                    },
                ),
                Err(e) => invalid(&e),
            }
        }
        "access.remove" => {
            if device.faults().account_fails {
                return Response::failure(
                    Some(request.id),
                    ErrorCode::WriteFailed,
                    "write_config() failed: the key line was not removed",
                );
            }
            let agent = request.params.get("agent").and_then(Value::as_bool) == Some(true);
            match device.access_remove(line_param(), agent) {
                Ok((removed, others, agent_removed)) => Response::success(
                    request.id,
                    &AccessRemoved {
                        removed,
                        others,
                        agent_removed,
                        config_hash: config_hash(device),
                    },
                ),
                Err(e) => invalid(&e),
            }
        }
        "account.remove" => {
            if request.params.get("name").and_then(Value::as_str) != Some(remote::LEGACY_USER) {
                return invalid(&format!(
                    "this agent removes only the account \"{}\", not {}",
                    remote::LEGACY_USER,
                    request.params.get("name").unwrap_or(&Value::Null)
                ));
            }
            Response::success(
                request.id,
                &AccountRemoved {
                    removed: device.remove_legacy_account(),
                },
            )
        }
        "diag.reboot" | "diag.shutdown" => {
            let reboot = request.method == "diag.reboot";
            device.power(reboot);
            let action = if reboot { "reboot" } else { "shutdown" };
            Response::success(
                request.id,
                &PowerAccepted {
                    action: action.to_owned(),
                },
            )
        }
        "service.control" => match device.model.lock() {
            Ok(mut model) => service_control(&mut model, &request),
            Err(_) => Response::failure(Some(request.id), ErrorCode::Internal, "model lock"),
        },
        _ => match device.model.lock() {
            Ok(model) => dispatch(&model, &request),
            Err(_) => Response::failure(Some(request.id), ErrorCode::Internal, "model lock"),
        },
    }
}

fn config_hash(device: &SimDevice) -> String {
    device
        .model
        .lock()
        .map(|m| m.hash().to_owned())
        .unwrap_or_default()
}

/// `service.control {name, action}`: start, stop or restart one service; answers it as `status`
/// lists it.
fn service_control(model: &mut DeviceModel, request: &Request) -> Response {
    let name = request.params.get("name").and_then(Value::as_str);
    let action = request.params.get("action").and_then(Value::as_str);
    let (Some(name), Some(action)) = (name, action) else {
        return Response::failure(
            Some(request.id),
            ErrorCode::InvalidParams,
            "name and action (start, stop or restart) are required",
        );
    };
    match model.control_service(name, action) {
        Ok(service) => Response::success(request.id, &service),
        Err(ServiceError::NotFound) => Response::failure(
            Some(request.id),
            ErrorCode::NotFound,
            format!("no service {name:?} on this firewall"),
        ),
        Err(ServiceError::BadAction) => Response::failure(
            Some(request.id),
            ErrorCode::InvalidParams,
            format!("action {action:?} is not start, stop or restart"),
        ),
    }
}

/// Handle one line of input (without its newline) and produce the response frame.
pub fn handle_line(model: &DeviceModel, line: &[u8]) -> Response {
    match parse(line) {
        Ok(request) => dispatch(model, &request),
        Err(response) => response,
    }
}

fn dispatch(model: &DeviceModel, request: &Request) -> Response {
    match request.method.as_str() {
        "hello" => hello(model, request, 0),
        "status" => Response::success(request.id, &model.status()),
        "config.get" => Response::success(request.id, &model.config_document()),
        "dhcp.leases" => Response::success(request.id, &model.dhcp_leases()),
        "arp.table" => Response::success(request.id, &model.arp_table()),
        "packages.list" => Response::success(request.id, &model.packages()),
        other => Response::failure(
            Some(request.id),
            ErrorCode::UnknownMethod,
            format!(
                "unknown method {other:?}; this agent implements {}",
                CAPABILITIES.join(", ")
            ),
        ),
    }
}

fn hello(model: &DeviceModel, request: &Request, euid: u32) -> Response {
    let offered: Vec<u64> = request
        .params
        .get("protocols")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_else(|| vec![u64::from(PROTOCOL_VERSION)]);
    if !offered.contains(&u64::from(PROTOCOL_VERSION)) {
        return Response::failure(
            Some(request.id),
            ErrorCode::UnsupportedVersion,
            format!("client offers protocols {offered:?}; this agent speaks {PROTOCOL_VERSION}"),
        );
    }
    let hello = Hello {
        agent_version: SIM_AGENT_VERSION.to_owned(),
        protocol: PROTOCOL_VERSION,
        hostname: format!("{}.{}", model.hostname, model.domain),
        pfsense: model.version.clone(),
        platform: "pfSense".to_owned(),
        capabilities: CAPABILITIES.iter().map(|c| (*c).to_owned()).collect(),
        euid: Some(euid),
    };
    Response::success(request.id, &hello)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(line: &str) -> Response {
        handle_line(&DeviceModel::new(1, 0), line.as_bytes())
    }

    #[test]
    fn hello_negotiates_version_one() {
        let r = call(r#"{"v":1,"id":1,"method":"hello","params":{"client":"t","protocols":[1]}}"#);
        let hello: Hello = r.into_result().unwrap().decode().unwrap();
        assert_eq!(hello.protocol, 1);
        assert!(hello.capabilities.contains(&"status".to_owned()));
        let r = call(r#"{"v":1,"id":2,"method":"hello","params":{"protocols":[7]}}"#);
        assert_eq!(
            r.into_result().unwrap_err().code,
            ErrorCode::UnsupportedVersion
        );
    }

    #[test]
    fn errors_carry_codes_and_ids() {
        assert_eq!(
            call(r#"{"v":1,"id":3,"method":"nope"}"#)
                .into_result()
                .unwrap_err()
                .code,
            ErrorCode::UnknownMethod
        );
        let bad = call(r#"{"id":4,"method":5}"#);
        assert_eq!(bad.id, Some(4));
        assert_eq!(bad.into_result().unwrap_err().code, ErrorCode::BadRequest);
        assert_eq!(call("not json").id, None);
        assert_eq!(
            call(r#"{"v":2,"id":5,"method":"status"}"#)
                .into_result()
                .unwrap_err()
                .code,
            ErrorCode::UnsupportedVersion
        );
    }
}
