//! Reboot and shutdown, as pfSense's Diagnostics > Reboot / Halt System — for owners and admins of
//! an active device. A dialog asks for the device's name, typed, before the button works (the
//! server checks it too). After a reboot the page shows "Rebooting" until the device is back;
//! after a shutdown it stays offline until someone powers it on at the site.

use leptos::prelude::*;

use super::detail::power_device;
use super::{Device, DeviceState};
use crate::auth::use_role;
use crate::roles::Role;
use crate::ui::badge::Health;
use crate::ui::toast::use_toasts;

/// The dialog's state, owned by the device page so that a live re-render (a health change of the
/// device) does not lose what the person was typing.
#[derive(Clone, Copy)]
pub struct PowerState {
    /// "reboot" or "shutdown" while the dialog is open.
    asking: RwSignal<Option<&'static str>>,
    typed: RwSignal<String>,
    error: RwSignal<Option<String>>,
    busy: RwSignal<bool>,
}

impl PowerState {
    pub fn new() -> Self {
        Self {
            asking: RwSignal::new(None),
            typed: RwSignal::new(String::new()),
            error: RwSignal::new(None),
            busy: RwSignal::new(false),
        }
    }
}

impl Default for PowerState {
    fn default() -> Self {
        Self::new()
    }
}

#[component]
pub fn PowerPanel(device: Device, health: Health, state: PowerState) -> impl IntoView {
    let role = use_role();
    let allowed = Signal::derive(move || role.get().is_some_and(Role::can_administer));
    if device.state != DeviceState::Active {
        return ().into_any();
    }
    let toasts = use_toasts();
    let PowerState {
        asking,
        typed,
        error,
        busy,
    } = state;
    let node = NodeRef::<leptos::html::Dialog>::new();
    Effect::new(move |_| {
        if let Some(dialog) = node.get() {
            match asking.get() {
                Some(_) if !dialog.open() => {
                    let _ = dialog.show_modal();
                }
                None if dialog.open() => dialog.close(),
                _ => {}
            }
        }
    });
    let name = StoredValue::new(device.name.clone());
    let id = StoredValue::new(device.id.clone());
    let matches = move || typed.get().trim() == name.get_value();
    let confirm = move |_| {
        let Some(action) = asking.get_untracked() else {
            return;
        };
        busy.set(true);
        let confirm = typed.get_untracked();
        leptos::task::spawn_local(async move {
            match power_device(id.get_value(), action.to_owned(), confirm).await {
                Ok(()) => {
                    asking.set(None);
                    toasts.success(if action == "reboot" {
                        format!(
                            "{} is rebooting; it shows as Rebooting until it is back.",
                            name.get_value()
                        )
                    } else {
                        format!(
                            "{} is shutting down. It stays offline until powered on at the site.",
                            name.get_value()
                        )
                    });
                }
                Err(e) => error.set(Some(e.to_string())),
            }
            busy.set(false);
        });
    };
    let open = move |action: &'static str| {
        typed.set(String::new());
        error.set(None);
        asking.set(Some(action));
    };
    let rebooting = health == Health::Rebooting;
    view! {
        <Show when=move || allowed.get()>
            <section class="card danger-zone" aria-labelledby="power-heading">
                <h3 id="power-heading">"Power"</h3>
                <p class="hint">"A reboot interrupts traffic through this firewall for a minute or two; a shutdown until someone powers it on at the site."</p>
                <div class="row">
                    <button type="button" class="btn btn-danger" disabled=rebooting on:click=move |_| open("reboot")>"Reboot…"</button>
                    <button type="button" class="btn btn-danger" disabled=rebooting on:click=move |_| open("shutdown")>"Shut down…"</button>
                </div>
            </section>
        </Show>
        <dialog id="power-dialog" class="dialog" node_ref=node aria-labelledby="power-dialog-title"
            on:close=move |_| asking.set(None)>
            <h2 id="power-dialog-title">{move || match asking.get() {
                Some("shutdown") => format!("Shut down {}?", name.get_value()),
                _ => format!("Reboot {}?", name.get_value()),
            }}</h2>
            <div class="dialog-body">
                <p>{move || match asking.get() {
                    Some("shutdown") => "The firewall powers off and stays off until someone switches it on at the site. Every network behind it loses its connection.",
                    _ => "The firewall restarts: traffic through it stops until it is back, usually within two minutes.",
                }}</p>
                <div class="field" class:field-invalid=move || error.get().is_some()>
                    <label for="power-confirm">{move || format!("Type {} to confirm", name.get_value())}</label>
                    <input id="power-confirm" name="power-confirm" type="text" autocomplete="off"
                        aria-invalid=move || error.get().is_some().then_some("true")
                        aria-describedby=move || error.get().is_some().then_some("power-confirm-error")
                        bind:value=typed/>
                    {move || error.get().map(|e| view! { <p class="field-error" id="power-confirm-error" role="alert">{e}</p> })}
                </div>
            </div>
            <div class="dialog-actions">
                <button type="button" class="btn" autofocus on:click=move |_| asking.set(None)>"Cancel"</button>
                <button type="button" class="btn btn-danger" disabled=move || !matches() || busy.get() on:click=confirm>
                    {move || match asking.get() { Some("shutdown") => "Shut down", _ => "Reboot" }}
                </button>
            </div>
        </dialog>
    }
    .into_any()
}
