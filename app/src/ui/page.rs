//! The top of every page: the document title and the visible heading with its one-line purpose.

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn PageHeader(#[prop(into)] title: String, #[prop(into)] subtitle: String) -> impl IntoView {
    view! {
        <Title text=title.clone()/>
        <header class="page-header">
            <h1>{title}</h1>
            <p class="muted">{subtitle}</p>
        </header>
    }
}
