//! The 404 page (also sets the HTTP status when rendered on the server).

use leptos::prelude::*;
use leptos_meta::Title;

#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    view! {
        <Title text="Not found"/>
        <section class="card empty-state">
            <h1>"Page not found"</h1>
            <p>"There is nothing at this address. It may have moved, or the link is mistyped."</p>
            <a class="btn" href="/">"Back to the fleet"</a>
        </section>
    }
}
