//! Toasts: short confirmations ("Alias saved") and errors in a polite live region. Successes go
//! away after a few seconds; errors stay longer and can always be dismissed by hand.

use std::time::Duration;

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToastKind {
    Success,
    Info,
    Error,
}

#[derive(Debug, Clone)]
struct Toast {
    id: u64,
    kind: ToastKind,
    message: String,
}

/// Handle to the page's toasts; copy it freely.
#[derive(Clone, Copy)]
pub struct Toasts {
    list: RwSignal<Vec<Toast>>,
    next_id: StoredValue<u64>,
}

impl Toasts {
    pub fn push(&self, kind: ToastKind, message: impl Into<String>) {
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        self.list.update(|l| {
            l.push(Toast {
                id,
                kind,
                message: message.into(),
            })
        });
        let list = self.list;
        let linger = if kind == ToastKind::Error { 10 } else { 5 };
        set_timeout(
            move || list.try_update(|l| l.retain(|t| t.id != id)).unwrap_or(()),
            Duration::from_secs(linger),
        );
    }

    pub fn success(&self, message: impl Into<String>) {
        self.push(ToastKind::Success, message);
    }

    pub fn error(&self, message: impl Into<String>) {
        self.push(ToastKind::Error, message);
    }

    fn dismiss(&self, id: u64) {
        self.list.update(|l| l.retain(|t| t.id != id));
    }
}

/// Create the page's toast list and put it in context (done once, by `App`).
pub fn provide_toasts() -> Toasts {
    let toasts = Toasts {
        list: RwSignal::new(Vec::new()),
        next_id: StoredValue::new(0),
    };
    provide_context(toasts);
    toasts
}

/// The toasts of the current page.
pub fn use_toasts() -> Toasts {
    use_context::<Toasts>().unwrap_or_else(provide_toasts)
}

/// Where toasts appear; rendered once by the layout.
#[component]
pub fn ToastRegion() -> impl IntoView {
    let toasts = use_toasts();
    view! {
        <div class="toasts" role="region" aria-label="Notifications" aria-live="polite">
            <For each=move || toasts.list.get() key=|t| t.id let:toast>
                <div
                    class=match toast.kind {
                        ToastKind::Success => "toast toast-success",
                        ToastKind::Info => "toast toast-info",
                        ToastKind::Error => "toast toast-error",
                    }
                    role=(toast.kind == ToastKind::Error).then_some("alert")
                >
                    <span class="toast-message">{toast.message}</span>
                    <button
                        type="button"
                        class="btn-icon"
                        aria-label="Dismiss notification"
                        on:click=move |_| toasts.dismiss(toast.id)
                    >
                        "×"
                    </button>
                </div>
            </For>
        </div>
    }
}
