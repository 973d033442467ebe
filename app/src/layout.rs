//! The frame around every page: top bar (brand, organisation switcher, account), the main
//! navigation, the content area and the toast region. Pages render only their own content.

use leptos::prelude::*;
use leptos_router::components::A;

use crate::auth::{provide_me, Logout, Me};
use crate::orgs::SwitchOrg;
use crate::ui::toast::ToastRegion;

#[component]
pub fn Frame(children: Children) -> impl IntoView {
    let me = provide_me();
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
            <Transition fallback=|| ()>
                {move || me.get().and_then(Result::ok).flatten().map(|user| view! { <OrgSwitcher user=user.clone()/><UserMenu user/> })}
            </Transition>
        </header>
        <div class="frame">
            <Transition fallback=|| view! { <div class="sidebar-none"></div> }>
                {move || match me.get().and_then(Result::ok).flatten() {
                    Some(_) => view! {
                        <nav class="sidebar" aria-label="Main">
                <ul>
                    <li><A href="/" exact=true>"Fleet"</A></li>
                    <li><A href="/devices">"Devices"</A></li>
                    <li><A href="/groups">"Groups"</A></li>
                    <li><A href="/search">"Search"</A></li>
                    <li><A href="/changes">"Changes"</A></li>
                    <li><A href="/audit">"Audit"</A></li>
                    <li><A href="/settings">"Settings"</A></li>
                </ul>
                <ul class="sidebar-secondary">
                    <li><A href="/system">"System"</A></li>
                    <li><A href="/design">"Design system"</A></li>
                </ul>
                        </nav>
                    }.into_any(),
                    None => view! { <div class="sidebar-none"></div> }.into_any(),
                }}
            </Transition>
            <main id="main" class="content" tabindex="-1">
                {children()}
            </main>
        </div>
        <ToastRegion/>
    }
}

/// The organisation switcher: every organisation the user belongs to; choosing one reloads the
/// app scoped to it.
#[component]
fn OrgSwitcher(user: Me) -> impl IntoView {
    let switch = ServerAction::<SwitchOrg>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = switch.value().get() {
            let _ = window().location().reload();
        }
    });
    let current = user
        .current
        .as_ref()
        .map(|o| o.id.clone())
        .unwrap_or_default();
    let orgs = user.orgs;
    view! {
        <div class="org-switcher">
            <label for="org-switcher" class="visually-hidden">"Organisation"</label>
            <select
                id="org-switcher"
                on:change=move |ev| { switch.dispatch(SwitchOrg { org_id: event_target_value(&ev) }); }
            >
                {orgs.into_iter().map(|org| {
                    let selected = org.id == current;
                    view! { <option value=org.id selected=selected>{format!("{} ({})", org.name, org.role.label())}</option> }
                }).collect_view()}
            </select>
        </div>
    }
}

/// Who is signed in, and the way out.
#[component]
fn UserMenu(user: Me) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = logout.value().get() {
            let _ = window().location().set_href("/login");
        }
    });
    let email = user.email;
    view! {
        <div class="topbar-end">
            <a href="/settings/account" class="user-email" data-testid="user-email">{email}</a>
            <button class="btn btn-ghost" on:click=move |_| { logout.dispatch(Logout {}); }>"Sign out"</button>
        </div>
    }
}
