//! `/settings`: organisation and instance settings.

use leptos::prelude::*;

use crate::ui::page::PageHeader;

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <PageHeader title="Settings" subtitle="Organisation, members and this Mudmap instance."/>
        <section class="card">
            <h2>"Instance"</h2>
            <p>
                <a href="/system">"System status"</a>
                " — version, database and a live server check."
            </p>
        </section>
    }
}
