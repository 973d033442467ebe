//! `/changes`: change sets (preview, apply, confirm-or-revert, rollouts) and their history.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn ChangesPage() -> impl IntoView {
    view! {
        <Title text="Changes"/>
        <header class="page-header">
            <h1>"Changes"</h1>
            <p class="muted">"Rule, alias and service changes across the fleet, with their history."</p>
        </header>
        <section class="card empty-state">
            <h2>"No changes yet"</h2>
            <p>"Changes you prepare and roll out to firewalls will be listed here, newest first."</p>
        </section>
    }
}
