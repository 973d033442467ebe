//! Tabs following the WAI-ARIA pattern: a `tablist` of `tab`s with a roving tabindex, arrow keys,
//! Home and End to move, and `tabpanel`s labelled by their tab.

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TabItem {
    pub id: &'static str,
    pub label: &'static str,
}

/// The tab strip. Render one [`TabPanel`] per item next to it.
#[component]
pub fn Tabs(
    /// Accessible name of the tab list.
    #[prop(into)]
    label: String,
    items: Vec<TabItem>,
    active: RwSignal<&'static str>,
) -> impl IntoView {
    let ids: Vec<&'static str> = items.iter().map(|t| t.id).collect();
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        let Some(pos) = ids.iter().position(|id| *id == active.get_untracked()) else {
            return;
        };
        let last = ids.len().saturating_sub(1);
        let next = match ev.key().as_str() {
            "ArrowRight" => {
                if pos == last {
                    0
                } else {
                    pos + 1
                }
            }
            "ArrowLeft" => {
                if pos == 0 {
                    last
                } else {
                    pos - 1
                }
            }
            "Home" => 0,
            "End" => last,
            _ => return,
        };
        ev.prevent_default();
        active.set(ids[next]);
        focus_element(&format!("tab-{}", ids[next]));
    };
    view! {
        <div class="tabs" role="tablist" aria-label=label on:keydown=on_keydown>
            {items
                .into_iter()
                .map(|item| {
                    let selected = move || active.get() == item.id;
                    view! {
                        <button
                            type="button"
                            role="tab"
                            class="tab"
                            id=format!("tab-{}", item.id)
                            aria-controls=format!("panel-{}", item.id)
                            aria-selected=move || if selected() { "true" } else { "false" }
                            tabindex=move || if selected() { "0" } else { "-1" }
                            on:click=move |_| active.set(item.id)
                        >
                            {item.label}
                        </button>
                    }
                })
                .collect_view()}
        </div>
    }
}

#[component]
pub fn TabPanel(
    id: &'static str,
    active: RwSignal<&'static str>,
    children: Children,
) -> impl IntoView {
    view! {
        <div
            class="tab-panel"
            role="tabpanel"
            id=format!("panel-{id}")
            aria-labelledby=format!("tab-{id}")
            tabindex="0"
            hidden=move || active.get() != id
        >
            {children()}
        </div>
    }
}

fn focus_element(id: &str) {
    use leptos::wasm_bindgen::JsCast;
    if let Some(el) = document().get_element_by_id(id) {
        if let Ok(el) = el.dyn_into::<leptos::web_sys::HtmlElement>() {
            let _ = el.focus();
        }
    }
}
