//! `/settings`: organisation and instance settings.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <Title text="Settings"/>
        <header class="page-header">
            <h1>"Settings"</h1>
            <p class="muted">"Organisation, members and this Mudmap instance."</p>
        </header>
        <section class="card">
            <h2>"Instance"</h2>
            <p>
                <a href="/system">"System status"</a>
                " — version, database and a live server check."
            </p>
        </section>
    }
}
