//! `/`: the fleet at a glance.

use leptos::prelude::*;

use crate::ui::page::PageHeader;

use crate::ui::badge::{Health, StateBadge};

#[component]
pub fn FleetPage() -> impl IntoView {
    view! {
        <PageHeader title="Fleet" subtitle="Every firewall of this organisation, by health."/>
        <section class="summary" aria-label="Devices by state">
            {[Health::Online, Health::Degraded, Health::Offline, Health::Quarantined]
                .into_iter()
                .map(|h| view! {
                    <div class="summary-card">
                        <StateBadge state=h/>
                        <span class="summary-count">"0"</span>
                    </div>
                })
                .collect_view()}
        </section>
        <section class="card empty-state">
            <h2>"No firewalls yet"</h2>
            <p>"Register a pfSense firewall once; Mudmap then monitors and changes it over SSH."</p>
            <a class="btn btn-primary" href="/devices">"Go to Devices"</a>
        </section>
    }
}
