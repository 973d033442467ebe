//! `/groups`: the organisation's device groups. A form creates one; each group can be opened to
//! tick its devices (saved at once, per device), renamed, or deleted behind a confirmation (its
//! devices stay). Viewers see the groups and their devices without the controls.

use leptos::prelude::*;

use super::*;
use crate::auth::pages::FormError;
use crate::auth::use_role;
use crate::devices::{list_devices, Device};
use crate::roles::Role;
use crate::ui::dialog::ConfirmDialog;
use crate::ui::field::TextField;
use crate::ui::page::PageHeader;
use crate::ui::toast::use_toasts;

#[component]
pub fn GroupsPage() -> impl IntoView {
    let role = use_role();
    let can_edit = Signal::derive(move || role.get().is_some_and(Role::can_operate));
    let toasts = use_toasts();
    let version = RwSignal::new(0u32);
    let groups = Resource::new(move || version.get(), |_| list_groups());
    let create = ServerAction::<CreateGroup>::new();
    let delete = ServerAction::<DeleteGroup>::new();
    let name = RwSignal::new(String::new());
    let name_error = RwSignal::new(None::<String>);
    // The group whose devices are shown.
    let open = RwSignal::new(None::<Group>);
    let deleting = RwSignal::new(None::<Group>);
    let delete_open = RwSignal::new(false);

    Effect::new(move |_| {
        if let Some(Ok(group)) = create.value().get() {
            toasts.success(format!(
                "Group {} created. Tick its devices below.",
                group.name
            ));
            name.set(String::new());
            open.set(Some(group));
            version.update(|v| *v += 1);
        }
    });
    Effect::new(move |_| match delete.value().get() {
        Some(Ok(())) => {
            toasts.success("Group deleted. Its devices are unchanged.");
            if open.get_untracked().map(|g| g.id) == deleting.get_untracked().map(|g| g.id) {
                open.set(None);
            }
            version.update(|v| *v += 1);
        }
        Some(Err(e)) => toasts.error(e.to_string()),
        None => {}
    });
    let server_error = Signal::derive(move || {
        create
            .value()
            .get()
            .and_then(Result::err)
            .map(|e| e.to_string())
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match group_name(&name.get_untracked()) {
            Err(problem) => name_error.set(Some(problem)),
            Ok(valid) => {
                name_error.set(None);
                create.dispatch(CreateGroup { name: valid });
            }
        }
    };

    view! {
        <PageHeader title="Groups" subtitle="Named sets of devices — per customer, site or role — to filter the fleet by and, later, to roll changes out to."/>
        // Everything that reads the signed-in user's role stays inside the Transition, so the
        // server's HTML and the browser's first render agree (hydration).
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
        <Show when=move || can_edit.get()>
            <section class="card" aria-labelledby="group-form-heading">
                <h2 id="group-form-heading">"New group"</h2>
                <form class="form form-inline" novalidate=true on:submit=submit>
                    <TextField label="Name" name="group-name" value=name required=true
                        error=Signal::derive(move || name_error.get()) placeholder="Acme Corp"/>
                    <FormError error=server_error/>
                    <div class="form-actions">
                        <button type="submit" class="btn btn-primary" disabled=move || create.pending().get()>"Create group"</button>
                    </div>
                </form>
            </section>
        </Show>
            {move || groups.get().map(|result| match result {
                Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(list) if list.is_empty() => view! {
                    <section class="card empty-state">
                        <h2>"No groups yet"</h2>
                        <p>"Group devices by customer or site, then filter the fleet by group."</p>
                    </section>
                }.into_any(),
                Ok(list) => view! {
                    <section class="card" aria-labelledby="groups-heading">
                        <h2 id="groups-heading">"Groups"</h2>
                        <div class="table-wrap">
                            <table class="table" aria-label="Groups">
                                <thead><tr>
                                    <th scope="col">"Name"</th>
                                    <th scope="col">"Devices"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr></thead>
                                <tbody>
                                    {list.into_iter().map(|group| {
                                        let for_open = group.clone();
                                        let for_delete = group.clone();
                                        view! {
                                            <tr data-testid="group-row">
                                                <td>{group.name.clone()}</td>
                                                <td>{group.devices}</td>
                                                <td class="row">
                                                    <button class="btn btn-ghost" on:click=move |_| open.set(Some(for_open.clone()))>
                                                        {move || if can_edit.get() { "Devices and name" } else { "Devices" }}
                                                    </button>
                                                    <Show when=move || can_edit.get()>
                                                        {
                                                            let for_delete = for_delete.clone();
                                                            view! {
                                                                <button class="btn btn-ghost" on:click=move |_| {
                                                                    deleting.set(Some(for_delete.clone()));
                                                                    delete_open.set(true);
                                                                }>"Delete"</button>
                                                            }
                                                        }
                                                    </Show>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    </section>
                }.into_any(),
            })}
        {move || open.get().map(|group| view! {
            <GroupEditor group can_edit on_changed=Callback::new(move |()| version.update(|v| *v += 1))/>
        })}
        </Transition>
        <ConfirmDialog
            open=delete_open
            id="delete-group-dialog"
            title="Delete this group?"
            confirm_label="Delete group"
            danger=true
            on_confirm=Callback::new(move |()| {
                if let Some(group) = deleting.get_untracked() {
                    delete.dispatch(DeleteGroup { id: group.id });
                }
            })
        >
            <p>{move || deleting.get().map(|g| format!(
                "The group {} goes; its {} devices stay as they are.", g.name, g.devices
            ))}</p>
        </ConfirmDialog>
    }
}

/// One group: rename it, and tick the devices that belong to it (each tick is saved at once).
#[component]
fn GroupEditor(group: Group, can_edit: Signal<bool>, on_changed: Callback<()>) -> impl IntoView {
    let toasts = use_toasts();
    let id = group.id.clone();
    let membership = Resource::new(move || (), {
        let id = id.clone();
        move |()| fetch_group(id.clone())
    });
    let devices = Resource::new(|| (), |()| list_devices());
    let members = RwSignal::new(Vec::<String>::new());
    Effect::new(move |_| {
        if let Some(Ok(m)) = membership.get() {
            members.set(m.device_ids);
        }
    });
    let filter = RwSignal::new(String::new());
    let set_member = ServerAction::<SetGroupMember>::new();
    Effect::new(move |_| match set_member.value().get() {
        Some(Ok(_)) => on_changed.run(()),
        Some(Err(e)) => {
            toasts.error(e.to_string());
            // Show the truth again.
            membership.refetch();
        }
        None => {}
    });
    let rename = ServerAction::<RenameGroup>::new();
    let new_name = RwSignal::new(group.name.clone());
    let rename_error = RwSignal::new(None::<String>);
    Effect::new(move |_| match rename.value().get() {
        Some(Ok(g)) => {
            toasts.success(format!("Renamed to {}.", g.name));
            on_changed.run(());
        }
        Some(Err(e)) => rename_error.set(Some(e.to_string())),
        None => {}
    });
    let rename_id = group.id.clone();
    let on_rename = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match group_name(&new_name.get_untracked()) {
            Err(problem) => rename_error.set(Some(problem)),
            Ok(name) => {
                rename_error.set(None);
                rename.dispatch(RenameGroup {
                    id: rename_id.clone(),
                    name,
                });
            }
        }
    };
    let heading = format!("Devices in {}", group.name);
    let group_id = StoredValue::new(group.id.clone());
    view! {
        <section class="card" aria-labelledby="group-editor-heading" data-testid="group-editor">
            <h2 id="group-editor-heading">{heading}</h2>
            <Show when=move || can_edit.get()>
                <form class="form form-inline" novalidate=true on:submit=on_rename.clone()>
                    <TextField label="Group name" name="group-rename" value=new_name required=true
                        error=Signal::derive(move || rename_error.get())/>
                    <div class="form-actions">
                        <button type="submit" class="btn" disabled=move || rename.pending().get()>"Rename"</button>
                    </div>
                </form>
            </Show>
            <label class="toolbar-search">
                <span class="visually-hidden">"Filter devices"</span>
                <input type="search" placeholder="Filter by name, host or tag" aria-label="Filter devices"
                    prop:value=move || filter.get() on:input=move |ev| filter.set(event_target_value(&ev))/>
            </label>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || devices.get().map(|result| match result {
                    Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! {
                        <p>"No devices in this organisation yet. Register some under Devices."</p>
                    }.into_any(),
                    Ok(list) => view! {
                        <ul class="checklist" aria-label="Devices of the group">
                            {list.into_iter().map(|device| view! {
                                <MemberBox device members filter can_edit group_id set_member/>
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}

/// One device's tick box in the group editor; hidden when it does not match the filter.
#[component]
fn MemberBox(
    device: Device,
    members: RwSignal<Vec<String>>,
    filter: RwSignal<String>,
    can_edit: Signal<bool>,
    group_id: StoredValue<String>,
    set_member: ServerAction<SetGroupMember>,
) -> impl IntoView {
    let id = device.id.clone();
    let haystack =
        format!("{} {} {}", device.name, device.host, device.tags.join(" ")).to_lowercase();
    let hidden = move || {
        let wanted = filter.get().trim().to_lowercase();
        !wanted.is_empty() && !haystack.contains(&wanted)
    };
    let checked = {
        let id = id.clone();
        move || members.get().contains(&id)
    };
    let toggle = move |ev: leptos::ev::Event| {
        let member = event_target_checked(&ev);
        members.update(|m| {
            m.retain(|d| *d != id);
            if member {
                m.push(id.clone());
            }
        });
        set_member.dispatch(SetGroupMember {
            id: group_id.get_value(),
            device_id: id.clone(),
            member,
        });
    };
    view! {
        <li hidden=hidden>
            <label class="check">
                <input type="checkbox" prop:checked=checked on:change=toggle disabled=move || !can_edit.get()/>
                <span>{device.name.clone()}</span>
                <span class="mono muted">{device.host.clone()}</span>
            </label>
        </li>
    }
}
