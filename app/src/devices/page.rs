//! `/devices`: the organisation's firewalls in two sections, Inactive (registered, not yet
//! activated) and Active; a form to add or edit one (rules checked as you submit, the same rules
//! the server enforces), activation (see [`super::activate_dialog`]) and deletion behind a
//! confirmation. Operators and above may add and edit,
//! admins and owners delete; viewers only read.

use leptos::prelude::*;

use super::activate_dialog::ActivationDialog;
use super::*;
use crate::auth::pages::FormError;
use crate::auth::use_role;
use crate::roles::Role;
use crate::ui::dialog::ConfirmDialog;
use crate::ui::field::TextField;
use crate::ui::page::PageHeader;
use crate::ui::toast::use_toasts;

fn badge_class(state: DeviceState) -> &'static str {
    match state {
        DeviceState::Inactive => "badge badge-inactive",
        DeviceState::Activating => "badge badge-degraded",
        DeviceState::Active => "badge badge-online",
        DeviceState::Quarantined => "badge badge-quarantined",
    }
}

#[component]
pub fn DevicesPage() -> impl IntoView {
    let role = use_role();
    let toasts = use_toasts();
    let version = RwSignal::new(0u32);
    let devices = Resource::new(move || version.get(), |_| list_devices());
    let add = ServerAction::<AddDevice>::new();
    let update = ServerAction::<UpdateDevice>::new();
    let delete = ServerAction::<DeleteDevice>::new();

    // The form: empty for a new device, filled for an edit.
    let editing = RwSignal::new(None::<Device>);
    let name = RwSignal::new(String::new());
    let host = RwSignal::new(String::new());
    let port = RwSignal::new(String::new());
    let tags = RwSignal::new(String::new());
    let notes = RwSignal::new(String::new());
    let errors = RwSignal::new(FieldErrors::new());
    let reset = move || {
        editing.set(None);
        for field in [name, host, port, tags, notes] {
            field.set(String::new());
        }
        errors.set(FieldErrors::new());
    };
    let deleting = RwSignal::new(None::<Device>);
    let delete_open = RwSignal::new(false);
    let activating = RwSignal::new(None::<Device>);
    // A delete that could not clean up the firewall: its message, and the offer to delete anyway.
    let force_open = RwSignal::new(false);
    let force_reason = RwSignal::new(String::new());

    Effect::new(move |_| {
        if let Some(Ok(device)) = add.value().get() {
            toasts.success(format!(
                "{} added. Activate it to start managing it.",
                device.name
            ));
            reset();
            version.update(|v| *v += 1);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(device)) = update.value().get() {
            toasts.success(format!("{} saved.", device.name));
            reset();
            version.update(|v| *v += 1);
        }
    });
    Effect::new(move |_| match delete.value().get() {
        Some(Ok(())) => {
            toasts.success("Device deleted.");
            version.update(|v| *v += 1);
        }
        Some(Err(AppError::Conflict(reason))) => {
            force_reason.set(reason);
            force_open.set(true);
        }
        Some(Err(e)) => toasts.error(e.to_string()),
        None => {}
    });
    let server_error = Signal::derive(move || {
        let failed = |r: Option<Result<Device, AppError>>| r.and_then(|r| r.err());
        if editing.get().is_some() {
            failed(update.value().get())
        } else {
            failed(add.value().get())
        }
        .map(|e| e.to_string())
    });

    let actions_for_form = DeviceSignals {
        role,
        editing,
        deleting,
        delete_open,
        activating,
        name,
        host,
        port,
        tags,
        notes,
        errors,
    };
    let submit = move || {
        let input = DeviceInput {
            name: name.get(),
            host: host.get(),
            port: port.get(),
            tags: tags.get(),
            notes: notes.get(),
        };
        if let Err(problems) = validate(&input) {
            errors.set(problems);
            return;
        }
        errors.set(FieldErrors::new());
        match editing.get_untracked() {
            Some(device) => {
                update.dispatch(UpdateDevice {
                    id: device.id,
                    name: input.name,
                    host: input.host,
                    port: input.port,
                    tags: input.tags,
                    notes: input.notes,
                });
            }
            None => {
                add.dispatch(AddDevice {
                    name: input.name,
                    host: input.host,
                    port: input.port,
                    tags: input.tags,
                    notes: input.notes,
                });
            }
        }
    };

    view! {
        <PageHeader title="Devices" subtitle="Firewalls registered in this organisation."/>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            <Show when=move || role.get().is_some_and(Role::can_operate)>
                <DeviceForm
                    fields=actions_for_form
                    server_error
                    pending=Signal::derive(move || add.pending().get() || update.pending().get())
                    on_submit=Callback::new(move |()| submit())
                    on_cancel=Callback::new(move |()| reset())
                />
            </Show>
            {move || devices.get().map(|result| match result {
                Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(list) => {
                    let (active, inactive): (Vec<Device>, Vec<Device>) =
                        list.into_iter().partition(|d| d.state != DeviceState::Inactive);
                    let actions = actions_for_form;
                    view! {
                        <DeviceTable title="Inactive" devices=inactive actions/>
                        <DeviceTable title="Active" devices=active actions/>
                    }.into_any()
                }
            })}
        </Transition>
        <ConfirmDialog
            open=delete_open
            id="delete-device-dialog"
            title="Delete this device?"
            confirm_label="Delete"
            danger=true
            on_confirm=Callback::new(move |()| {
                if let Some(device) = deleting.get_untracked() {
                    delete.dispatch(DeleteDevice { id: device.id, force: false });
                }
            })
        >
            <p>{move || deleting.get().map(|d| if d.state == DeviceState::Inactive {
                format!("{} ({}) and everything Mudmap stored about it are removed. The firewall itself is not changed.", d.name, d.host)
            } else {
                format!("Mudmap first removes its key from the admin account of {} ({}) and the agent if no other Mudmap uses it, checks that the key no longer logs in, then deletes everything it stored about it: keys, status and history.", d.name, d.host)
            })}</p>
        </ConfirmDialog>
        <ConfirmDialog
            open=force_open
            id="force-delete-dialog"
            title="Delete anyway?"
            confirm_label="Delete anyway"
            danger=true
            on_confirm=Callback::new(move |()| {
                if let Some(device) = deleting.get_untracked() {
                    delete.dispatch(DeleteDevice { id: device.id, force: true });
                }
            })
        >
            <p role="alert">{move || force_reason.get()}</p>
        </ConfirmDialog>
        <ActivationDialog device=activating on_finished=Callback::new(move |()| version.update(|v| *v += 1))/>
    }
}

/// The page's shared state: the form's fields and errors, and what the rows' buttons set.
#[derive(Clone, Copy)]
struct DeviceSignals {
    role: Signal<Option<Role>>,
    editing: RwSignal<Option<Device>>,
    deleting: RwSignal<Option<Device>>,
    delete_open: RwSignal<bool>,
    activating: RwSignal<Option<Device>>,
    name: RwSignal<String>,
    host: RwSignal<String>,
    port: RwSignal<String>,
    tags: RwSignal<String>,
    notes: RwSignal<String>,
    errors: RwSignal<FieldErrors>,
}

#[component]
fn DeviceTable(title: &'static str, devices: Vec<Device>, actions: DeviceSignals) -> impl IntoView {
    let empty = if title == "Active" {
        "No active devices yet: activate one to manage it."
    } else {
        "No inactive devices."
    };
    let heading = format!("devices-{}", title.to_lowercase());
    let labelled_by = heading.clone();
    view! {
        <section class="card" aria-labelledby=labelled_by>
            <h2 id=heading>{title}</h2>
            <div class="table-wrap">
                <table class="table" aria-label=format!("{title} devices")>
                    <thead>
                        <tr>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Host"</th>
                            <th scope="col">"SSH port"</th>
                            <th scope="col">"Tags"</th>
                            <th scope="col">"Version"</th>
                            <th scope="col">"State"</th>
                            <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        {if devices.is_empty() {
                            view! { <tr><td colspan="7" class="table-empty">{empty}</td></tr> }.into_any()
                        } else {
                            devices
                                .into_iter()
                                .map(|device| view! { <DeviceRow device actions/> })
                                .collect_view()
                                .into_any()
                        }}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn DeviceRow(device: Device, actions: DeviceSignals) -> impl IntoView {
    let can_edit = actions.role.get_untracked().is_some_and(Role::can_operate);
    let can_delete = actions
        .role
        .get_untracked()
        .is_some_and(Role::can_administer);
    let for_edit = device.clone();
    let for_delete = device.clone();
    let for_activate = device.clone();
    let activate_label = match device.state {
        DeviceState::Inactive => "Activate",
        _ => "Re-activate",
    };
    let activate = move |_| actions.activating.set(Some(for_activate.clone()));
    let quarantine = (device.state == DeviceState::Quarantined).then(|| match &device.fingerprint {
        Some(pinned) => format!(
            "Host key changed: pinned {pinned}, now presents {}. Re-activate only if you expected this.",
            device.presented_fingerprint.clone().unwrap_or_else(|| "unknown".to_owned())
        ),
        None => "Address changed: re-activate to confirm its host key.".to_owned(),
    });
    let edit = move |_| {
        let d = for_edit.clone();
        actions.name.set(d.name.clone());
        actions.host.set(d.host.clone());
        actions.port.set(d.port.to_string());
        actions.tags.set(d.tags.join(", "));
        actions.notes.set(d.notes.clone());
        actions.errors.set(FieldErrors::new());
        actions.editing.set(Some(d));
    };
    let delete = move |_| {
        actions.deleting.set(Some(for_delete.clone()));
        actions.delete_open.set(true);
    };
    view! {
        <tr data-testid="device-row">
            <td>{device.name.clone()}</td>
            <td class="mono">{device.host.clone()}</td>
            <td>{device.port}</td>
            <td>{device.tags.join(", ")}</td>
            <td>{device.pfsense.clone().unwrap_or_else(|| "—".to_owned())}</td>
            <td>
                <span class=badge_class(device.state)>{device.state.label()}</span>
                {quarantine.map(|text| view! { <span class="quarantine-note" data-testid="quarantine-note">{text}</span> })}
            </td>
            <td class="row">
                {can_edit.then(|| view! { <button class="btn btn-ghost" on:click=activate>{activate_label}</button> })}
                {can_edit.then(|| view! { <button class="btn btn-ghost" on:click=edit>"Edit"</button> })}
                {can_delete.then(|| view! { <button class="btn btn-ghost" on:click=delete>"Delete"</button> })}
            </td>
        </tr>
    }
}

/// The add / edit form. Field errors come from [`validate`], run before anything is sent.
#[component]
fn DeviceForm(
    fields: DeviceSignals,
    server_error: Signal<Option<String>>,
    pending: Signal<bool>,
    on_submit: Callback<()>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let errors = fields.errors;
    let field_error =
        move |field: &'static str| Signal::derive(move || errors.get().get(field).cloned());
    view! {
                <section class="card" aria-labelledby="device-form-heading">
                    <h2 id="device-form-heading">
                        {move || match fields.editing.get() {
                            Some(d) => format!("Edit {}", d.name),
                            None => "Add a device".to_owned(),
                        }}
                    </h2>
                    <form class="form" novalidate=true on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); on_submit.run(()); }>
                        <TextField label="Name" name="device-name" value=fields.name required=true error=field_error("name") placeholder="acme-hq"/>
                        <TextField label="Host" name="device-host" value=fields.host required=true error=field_error("host")
                            hint="IPv4 or IPv6 address, or DNS name." placeholder="192.0.2.1"/>
                        <TextField label="SSH port" name="device-port" value=fields.port error=field_error("port") placeholder="22" input_type="number"/>
                        <TextField label="Tags" name="device-tags" value=fields.tags error=field_error("tags") hint="Comma-separated, e.g. acme, branch."/>
                        <TextField label="Notes" name="device-notes" value=fields.notes error=field_error("notes")/>
                        <FormError error=server_error/>
                        <div class="form-actions">
                            <button type="submit" class="btn btn-primary" disabled=move || pending.get()>
                                {move || if fields.editing.get().is_some() { "Save" } else { "Add device" }}
                            </button>
                            <Show when=move || fields.editing.get().is_some()>
                                <button type="button" class="btn" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                            </Show>
                        </div>
                    </form>
                </section>
    }
}
