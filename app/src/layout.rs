//! The frame around every page: top bar (brand, organisation switcher, account), the main
//! navigation, the content area and the toast region. Pages render only their own content.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::ui::toast::ToastRegion;

#[component]
pub fn Frame(children: Children) -> impl IntoView {
    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <a class="brand" href="/" aria-label="Mudmap home">
                <svg class="brand-mark" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
                    <path d="M3 6h18M3 12h18M3 18h18" stroke="currentColor" stroke-width="2.5" stroke-linecap="round"/>
                    <circle cx="8" cy="6" r="2.2" fill="currentColor"/>
                    <circle cx="16" cy="12" r="2.2" fill="currentColor"/>
                    <circle cx="10" cy="18" r="2.2" fill="currentColor"/>
                </svg>
                <span>"Mudmap"</span>
            </a>
            <OrgSwitcher/>
            <div class="topbar-end"></div>
        </header>
        <div class="frame">
            <nav class="sidebar" aria-label="Main">
                <ul>
                    <li><A href="/" exact=true>"Fleet"</A></li>
                    <li><A href="/devices">"Devices"</A></li>
                    <li><A href="/changes">"Changes"</A></li>
                    <li><A href="/settings">"Settings"</A></li>
                </ul>
                <ul class="sidebar-secondary">
                    <li><A href="/system">"System"</A></li>
                    <li><A href="/design">"Design system"</A></li>
                </ul>
            </nav>
            <main id="main" class="content" tabindex="-1">
                {children()}
            </main>
        </div>
        <ToastRegion/>
    }
}

/// The organisation switcher. Until accounts exist there is one organisation, so it is shown but
/// cannot be changed.
#[component]
fn OrgSwitcher() -> impl IntoView {
    view! {
        <div class="org-switcher">
            <label for="org-switcher" class="visually-hidden">"Organisation"</label>
            <select id="org-switcher" disabled=true title="Organisations arrive with accounts">
                <option selected=true>"My organisation"</option>
            </select>
        </div>
    }
}
