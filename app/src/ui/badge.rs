//! State badges: a device's health as a word and a colour (never colour alone).

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The health states a device can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Health {
    Online,
    Degraded,
    Offline,
    Quarantined,
    Inactive,
    /// Activated, not yet polled.
    Pending,
    /// Restarting on request: expected to be back shortly.
    Rebooting,
    /// Reachable, but Mudmap's key has no root access there: re-activate it.
    NoAccess,
}

impl Health {
    pub const ALL: [Health; 8] = [
        Health::Online,
        Health::Degraded,
        Health::Rebooting,
        Health::Offline,
        Health::NoAccess,
        Health::Quarantined,
        Health::Inactive,
        Health::Pending,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Health::Online => "Online",
            Health::Degraded => "Degraded",
            Health::Offline => "Offline",
            Health::Quarantined => "Quarantined",
            Health::Inactive => "Inactive",
            Health::Pending => "Pending",
            Health::Rebooting => "Rebooting",
            Health::NoAccess => "No root access",
        }
    }

    /// The CSS modifier, `badge-<slug>`.
    pub fn slug(self) -> &'static str {
        match self {
            Health::Online => "online",
            Health::Degraded => "degraded",
            Health::Offline => "offline",
            Health::Quarantined => "quarantined",
            Health::Inactive => "inactive",
            Health::Pending => "pending",
            Health::Rebooting => "rebooting",
            Health::NoAccess => "no_access",
        }
    }

    pub fn parse(slug: &str) -> Option<Health> {
        Health::ALL.into_iter().find(|h| h.slug() == slug)
    }
}

#[component]
pub fn StateBadge(#[prop(into)] state: Signal<Health>) -> impl IntoView {
    view! {
        <span class=move || format!("badge badge-{}", state.get().slug())>{move || state.get().label()}</span>
    }
}
