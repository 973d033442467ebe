//! Agent protocol v1 message types and framing limits.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest message either side accepts, in bytes (one line of JSON).
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// A request from the server to the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub v: u32,
    pub id: u64,
    pub method: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub params: Value,
}

impl Request {
    pub fn new(id: u64, method: impl Into<String>, params: Value) -> Self {
        Self {
            v: PROTOCOL_VERSION,
            id,
            method: method.into(),
            params,
        }
    }

    /// One frame: the JSON and its terminating newline.
    pub fn to_frame(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

/// The agent's answer to one request. The result is kept as JSON text: the agent writes it
/// straight from its own type, and the client decodes it once, straight into the type it expects
/// (no intermediate `Value` tree on either side).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// `None` only when the request was too malformed to find its id.
    pub id: Option<u64>,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Box<serde_json::value::RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<AgentError>,
}

impl Response {
    /// A successful answer carrying `result`; a result that cannot be written as JSON (a bug)
    /// becomes an `internal` error.
    pub fn success<T: Serialize + ?Sized>(id: u64, result: &T) -> Self {
        match serde_json::value::to_raw_value(result) {
            Ok(raw) => Self {
                id: Some(id),
                ok: true,
                result: Some(raw),
                error: None,
            },
            Err(e) => Self::failure(
                Some(id),
                ErrorCode::Internal,
                format!("cannot encode the result: {e}"),
            ),
        }
    }

    pub fn failure(id: Option<u64>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            id,
            ok: false,
            result: None,
            error: Some(AgentError {
                code,
                message: message.into(),
                details: Value::Null,
            }),
        }
    }

    pub fn to_frame(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// The result (as JSON text), or the agent's error.
    pub fn into_result(self) -> Result<RawResult, AgentError> {
        match (self.ok, self.result, self.error) {
            (true, result, _) => Ok(RawResult(result)),
            (false, _, Some(error)) => Err(error),
            (false, _, None) => Err(AgentError {
                code: ErrorCode::Internal,
                message: "the agent reported a failure without saying why".to_owned(),
                details: Value::Null,
            }),
        }
    }
}

/// A successful answer's result as JSON text, decoded by whoever knows its type.
#[derive(Debug)]
pub struct RawResult(Option<Box<serde_json::value::RawValue>>);

impl RawResult {
    /// The JSON text (`null` when the agent sent no result).
    pub fn json(&self) -> &str {
        self.0
            .as_deref()
            .map_or("null", serde_json::value::RawValue::get)
    }

    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> serde_json::Result<T> {
        serde_json::from_str(self.json())
    }
}

/// An error reported by the agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentError {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadRequest,
    UnsupportedVersion,
    UnknownMethod,
    InvalidParams,
    NotFound,
    Conflict,
    Locked,
    Busy,
    FrameTooLarge,
    /// The agent does not run as uid 0 (every method but `hello`).
    NotRoot,
    /// A write did not take effect (checked by re-reading).
    WriteFailed,
    Internal,
    /// A code from a newer agent that this build does not know.
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::UnknownMethod => "unknown_method",
            ErrorCode::InvalidParams => "invalid_params",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Locked => "locked",
            ErrorCode::Busy => "busy",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::NotRoot => "not_root",
            ErrorCode::WriteFailed => "write_failed",
            ErrorCode::Internal => "internal",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// `hello` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub agent_version: String,
    pub protocol: u32,
    pub hostname: String,
    pub pfsense: PfSenseVersion,
    pub platform: String,
    pub capabilities: Vec<String>,
    /// The user id the agent runs as (agent 1.2.0 on; 0 when it has root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub euid: Option<u32>,
}

impl Hello {
    /// Whether the agent implements `method` (the server calls nothing else).
    pub fn can(&self, method: &str) -> bool {
        self.capabilities.iter().any(|c| c == method)
    }
}

/// `access.ensure` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEnsured {
    /// False when the same device's earlier line was replaced.
    pub created: bool,
    /// Comments of other Mudmap lines on the firewall (another organisation or instance).
    pub others: Vec<String>,
    pub config_hash: String,
}

/// `access.remove` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessRemoved {
    /// False when no line carried the key any more.
    pub removed: bool,
    pub others: Vec<String>,
    pub agent_removed: bool,
    pub config_hash: String,
}

/// `account.remove` result (the service account of agents before 1.2.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountRemoved {
    pub removed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PfSenseVersion {
    pub version: String,
    /// `CE` or `Plus`.
    pub edition: String,
}

/// `status` and its parts: shared with the browser (the device page shows them as they came).
pub use app::devices::status::{
    ArpEntry, ArpTable, Cpu, DhcpLease, DhcpLeases, Disk, Gateway, Interface, Memory, Package,
    Packages, PowerAccepted, Service, Status,
};

/// `config.get` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDocument {
    /// `sha256:<hex>` of the exact bytes of `xml`.
    pub hash: String,
    pub xml: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frames_are_one_line_each() {
        let req = Request::new(7, "status", json!({"note": "multi\nline"}));
        let frame = req.to_frame();
        assert_eq!(frame.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(frame.last(), Some(&b'\n'));
        let back: Request = serde_json::from_slice(&frame).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn wire_shapes_match_the_spec() {
        assert_eq!(
            serde_json::to_value(Request::new(42, "status", Value::Null)).unwrap(),
            json!({"v": 1, "id": 42, "method": "status"})
        );
        assert_eq!(
            serde_json::to_value(Response::failure(Some(3), ErrorCode::Conflict, "changed"))
                .unwrap(),
            json!({"id": 3, "ok": false, "error": {"code": "conflict", "message": "changed"}})
        );
        let unknown: Response = serde_json::from_value(
            json!({"id": 1, "ok": false, "error": {"code": "from_the_future", "message": "x"}}),
        )
        .unwrap();
        assert_eq!(unknown.into_result().unwrap_err().code, ErrorCode::Unknown);
    }
}
