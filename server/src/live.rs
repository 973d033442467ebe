//! Live events for open pages (`/api/events`): a device's health changed, or its configuration
//! changed outside Mudmap (a drift mark set) or that mark was acknowledged. One bounded broadcast
//! channel per process; each subscriber keeps its own organisation's events, and one that falls
//! behind is told to re-read (`resync`) rather than holding events in memory.

use tokio::sync::broadcast;

pub use crate::monitor::HealthEvent;

/// Events a slow subscriber may fall behind by before it is told to re-read.
const CAPACITY: usize = 4096;

/// Something open pages of one organisation should show.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    Health(HealthEvent),
    /// `marked`: the device now carries a "Changed outside Mudmap" mark (false: acknowledged).
    Drift {
        org_id: String,
        device_id: String,
        marked: bool,
        at_ms: i64,
    },
}

impl LiveEvent {
    pub fn org_id(&self) -> &str {
        match self {
            LiveEvent::Health(e) => &e.org_id,
            LiveEvent::Drift { org_id, .. } => org_id,
        }
    }

    /// The server-sent event's name.
    pub fn name(&self) -> &'static str {
        match self {
            LiveEvent::Health(_) => "health",
            LiveEvent::Drift { .. } => "drift",
        }
    }

    /// The server-sent event's data (ids and states only, never configuration).
    pub fn data(&self) -> serde_json::Value {
        match self {
            LiveEvent::Health(e) => serde_json::json!({
                "device_id": e.device_id,
                "health": e.health,
                "reason": e.reason,
                "at_ms": e.at_ms,
            }),
            LiveEvent::Drift {
                device_id,
                marked,
                at_ms,
                ..
            } => serde_json::json!({
                "device_id": device_id,
                "marked": marked,
                "at_ms": at_ms,
            }),
        }
    }
}

/// The process's live events: cheap to clone, sending never blocks.
#[derive(Clone)]
pub struct Live(broadcast::Sender<LiveEvent>);

impl Default for Live {
    fn default() -> Self {
        Self(broadcast::channel(CAPACITY).0)
    }
}

impl Live {
    /// Announce an event (dropped when no page is open).
    pub fn send(&self, event: LiveEvent) {
        let _ = self.0.send(event);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.0.subscribe()
    }
}
