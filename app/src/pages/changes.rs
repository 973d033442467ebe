//! `/changes`: change sets (preview, apply, confirm-or-revert, rollouts) and their history.

use leptos::prelude::*;

use crate::ui::page::PageHeader;

#[component]
pub fn ChangesPage() -> impl IntoView {
    view! {
        <PageHeader title="Changes" subtitle="Rule, alias and service changes across the fleet, with their history."/>
        <section class="card empty-state">
            <h2>"No changes yet"</h2>
            <p>"Changes you prepare and roll out to firewalls will be listed here, newest first."</p>
        </section>
    }
}
