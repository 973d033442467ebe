//! Confirmation dialogs on the native `<dialog>` element: modal, focus-trapped, closed by Escape,
//! with Cancel focused first so a stray Enter never confirms a destructive action.

use leptos::prelude::*;

#[component]
pub fn ConfirmDialog(
    /// Opens and closes the dialog; Escape and Cancel set it back to `false`.
    open: RwSignal<bool>,
    /// Unique on the page; used for the heading id.
    id: &'static str,
    #[prop(into)] title: String,
    #[prop(into)] confirm_label: String,
    /// Styles the confirm button as destructive.
    #[prop(optional)]
    danger: bool,
    on_confirm: Callback<()>,
    children: Children,
) -> impl IntoView {
    let node = NodeRef::<leptos::html::Dialog>::new();
    Effect::new(move |_| {
        let want_open = open.get();
        if let Some(dialog) = node.get() {
            if want_open && !dialog.open() {
                // Fails only if the element is detached, in which case there is nothing to show.
                let _ = dialog.show_modal();
            } else if !want_open && dialog.open() {
                dialog.close();
            }
        }
    });
    let heading_id = format!("{id}-title");
    let labelled_by = heading_id.clone();
    let confirm_class = if danger {
        "btn btn-danger"
    } else {
        "btn btn-primary"
    };
    view! {
        <dialog
            id=id
            class="dialog"
            node_ref=node
            aria-labelledby=labelled_by
            on:close=move |_| open.set(false)
        >
            <h2 id=heading_id>{title}</h2>
            <div class="dialog-body">{children()}</div>
            <div class="dialog-actions">
                <button type="button" class="btn" autofocus on:click=move |_| open.set(false)>
                    "Cancel"
                </button>
                <button
                    type="button"
                    class=confirm_class
                    on:click=move |_| {
                        open.set(false);
                        on_confirm.run(());
                    }
                >
                    {confirm_label}
                </button>
            </div>
        </dialog>
    }
}
