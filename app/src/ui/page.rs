//! The top of every page: the document title and the visible heading with its one-line purpose.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn PageHeader(title: &'static str, subtitle: &'static str) -> impl IntoView {
    view! {
        <Title text=title/>
        <header class="page-header">
            <h1>{title}</h1>
            <p class="muted">{subtitle}</p>
        </header>
    }
}
