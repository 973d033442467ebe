//! Mudmap's web application, shared by the server (`ssr`: renders pages, runs server functions)
//! and the browser (`hydrate`: makes the rendered page interactive). It is grouped by feature:
//! each feature module holds its shared types, its `#[server]` functions and its components.
//! Nothing here talks to a database or a device directly; server functions reach the server's
//! services through [`services`] (ssr only).
// Deeply nested views (the fleet table) exceed rustc's default query depth in the wasm build.
#![recursion_limit = "256"]

pub mod audit;
pub mod auth;
pub mod changes;
pub mod design;
pub mod devices;
pub mod error;
pub mod fleet;
pub mod groups;
pub mod layout;
pub mod orgs;
pub mod pages;
pub mod roles;
pub mod search;
#[cfg(feature = "ssr")]
pub mod services;
pub mod system;
pub mod ui;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::path;

/// Asset URLs the server resolved at start (content-hashed file names).
#[derive(Debug, Clone)]
pub struct ShellAssets {
    pub stylesheet: String,
}

/// The HTML document around [`App`]; rendered on the server only.
pub fn shell(options: LeptosOptions, assets: ShellAssets) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="stylesheet" href=assets.stylesheet/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    ui::toast::provide_toasts();
    // Effects run only in the browser: this marks the moment the page became interactive.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Title formatter=|page: String| if page.is_empty() { "Mudmap".to_owned() } else { format!("{page} · Mudmap") }/>
        <Router>
            <layout::Frame>
                <Routes fallback=|| view! { <pages::not_found::NotFound/> }>
                    <Route path=path!("/") view=pages::fleet::FleetPage/>
                    <Route path=path!("/devices") view=devices::page::DevicesPage/>
                    <Route path=path!("/devices/:id") view=devices::detail_page::DeviceDetailPage/>
                    <Route path=path!("/groups") view=groups::page::GroupsPage/>
                    <Route path=path!("/changes") view=pages::changes::ChangesPage/>
                    <Route path=path!("/search") view=search::page::SearchPage/>
                    <Route path=path!("/audit") view=audit::page::AuditPage/>
                    <Route path=path!("/settings") view=orgs::pages::OrgSettingsPage/>
                    <Route path=path!("/settings/members") view=orgs::pages::MembersPage/>
                    <Route path=path!("/settings/jobs") view=orgs::pages::JobsPage/>
                    <Route path=path!("/settings/account") view=auth::settings::AccountPage/>
                    <Route path=path!("/login") view=auth::pages::LoginPage/>
                    <Route path=path!("/register") view=auth::pages::RegisterPage/>
                    <Route path=path!("/verify-email") view=auth::pages::VerifyEmailPage/>
                    <Route path=path!("/forgot-password") view=auth::pages::ForgotPasswordPage/>
                    <Route path=path!("/reset-password") view=auth::pages::ResetPasswordPage/>
                    <Route path=path!("/invite") view=auth::pages::InvitePage/>
                    <Route path=path!("/system") view=system::SystemPage/>
                    <Route path=path!("/design") view=design::DesignPage/>
                </Routes>
            </layout::Frame>
        </Router>
    }
}
