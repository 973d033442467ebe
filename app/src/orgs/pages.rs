//! The organisation's settings pages: general (rename, create another, leave, delete), members
//! (search, roles, removal, invitations) and background jobs (failed ones can be retried). Actions
//! a role may not take are not offered; the server refuses them anyway.

use leptos::prelude::*;

use super::*;
use crate::auth::pages::{error_of, go, FormError};
use crate::auth::{use_me, use_role};
use crate::ui::dialog::ConfirmDialog;
use crate::ui::field::TextField;
use crate::ui::format::utc_datetime;
use crate::ui::page::PageHeader;
use crate::ui::toast::use_toasts;

/// Sub-navigation of the settings pages.
#[component]
pub fn SettingsNav() -> impl IntoView {
    view! {
        <nav class="subnav" aria-label="Settings">
            <leptos_router::components::A href="/settings" exact=true>"Organisation"</leptos_router::components::A>
            <leptos_router::components::A href="/settings/members">"Members"</leptos_router::components::A>
            <leptos_router::components::A href="/settings/jobs">"Jobs"</leptos_router::components::A>
            <leptos_router::components::A href="/settings/account">"Your account"</leptos_router::components::A>
            <leptos_router::components::A href="/system">"System"</leptos_router::components::A>
        </nav>
    }
}

/// The caller's role in the current organisation, once known.
#[component]
pub fn OrgSettingsPage() -> impl IntoView {
    let me = use_me();
    let role = use_role();
    let toasts = use_toasts();
    let name = RwSignal::new(String::new());
    let new_org = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let rename = ServerAction::<RenameOrg>::new();
    let create = ServerAction::<CreateOrg>::new();
    let leave = ServerAction::<LeaveOrg>::new();
    let delete = ServerAction::<DeleteOrg>::new();
    let leave_open = RwSignal::new(false);
    let current = Signal::derive(move || {
        me.get()
            .and_then(Result::ok)
            .flatten()
            .and_then(|me| me.current)
    });
    Effect::new(move |_| {
        if let Some(org) = current.get() {
            name.set(org.name);
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = rename.value().get() {
            toasts.success("Organisation renamed.");
            me.refetch();
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(_)) = create.value().get() {
            go("/");
        }
    });
    Effect::new(move |_| {
        if matches!(leave.value().get(), Some(Ok(())))
            || matches!(delete.value().get(), Some(Ok(())))
        {
            go("/");
        }
    });
    view! {
        <PageHeader title="Settings" subtitle="Your organisation, its members and this Mudmap instance."/>
        <SettingsNav/>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
        <section class="card" aria-labelledby="org-name-heading">
            <h2 id="org-name-heading">"Organisation"</h2>
            <Show
                when=move || role.get().is_some_and(Role::can_administer)
                fallback=move || view! {
                    <p>{move || current.get().map(|o| format!("{} — your role: {}", o.name, o.role.label()))}</p>
                }
            >
                <form class="form" on:submit=move |ev| {
                    ev.prevent_default();
                    rename.dispatch(RenameOrg { name: name.get() });
                }>
                    <TextField label="Name" name="org-name" value=name required=true/>
                    <FormError error=error_of(rename.value())/>
                    <div class="form-actions">
                        <button type="submit" class="btn btn-primary" disabled=move || rename.pending().get()>"Rename"</button>
                    </div>
                </form>
            </Show>
        </section>
        <section class="card" aria-labelledby="new-org-heading">
            <h2 id="new-org-heading">"Another organisation"</h2>
            <p class="muted">"For a separate customer or team. You will be its owner."</p>
            <form class="form" on:submit=move |ev| {
                ev.prevent_default();
                create.dispatch(CreateOrg { name: new_org.get() });
            }>
                <TextField label="New organisation's name" name="new-org" value=new_org required=true/>
                <FormError error=error_of(create.value())/>
                <div class="form-actions">
                    <button type="submit" class="btn">"Create organisation"</button>
                </div>
            </form>
        </section>
        <section class="card danger-zone" aria-labelledby="leave-heading">
            <h2 id="leave-heading">"Leave or delete"</h2>
            <div class="row">
                <button class="btn" on:click=move |_| leave_open.set(true)>"Leave organisation"</button>
            </div>
            <FormError error=error_of(leave.value())/>
            <ConfirmDialog
                open=leave_open
                id="leave-dialog"
                title="Leave this organisation?"
                confirm_label="Leave"
                danger=true
                on_confirm=Callback::new(move |()| { leave.dispatch(LeaveOrg {}); })
            >
                <p>"You lose access at once. An admin can invite you again."</p>
            </ConfirmDialog>
            <Show when=move || role.get().is_some_and(Role::can_delete_org)>
                <form class="form" on:submit=move |ev| {
                    ev.prevent_default();
                    delete.dispatch(DeleteOrg { confirm_name: confirm.get() });
                }>
                    <p>"Deleting removes the organisation, its members' access, its devices and its history. This cannot be undone."</p>
                    <TextField label="Type the organisation's name to confirm" name="confirm-delete" value=confirm/>
                    <FormError error=error_of(delete.value())/>
                    <div class="form-actions">
                        <button type="submit" class="btn btn-danger" disabled=move || {
                            current.get().is_none_or(|o| o.name != confirm.get().trim())
                        }>"Delete organisation"</button>
                    </div>
                </form>
            </Show>
        </section>
        </Transition>
    }
}

#[component]
pub fn MembersPage() -> impl IntoView {
    let role = use_role();
    let toasts = use_toasts();
    let search = RwSignal::new(String::new());
    let version = RwSignal::new(0u32);
    let members = Resource::new(
        move || (search.get(), version.get()),
        |(search, _)| list_members(search),
    );
    // Non-admins get 403 here and the section stays hidden.
    let invitations = Resource::new(move || version.get(), |_| list_invitations());
    let set_role = ServerAction::<SetMemberRole>::new();
    let remove = ServerAction::<RemoveMember>::new();
    let invite = ServerAction::<InviteMember>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let invite_email = RwSignal::new(String::new());
    let invite_role = RwSignal::new(Role::Operator);
    let removing = RwSignal::new(None::<Member>);
    let remove_open = RwSignal::new(false);

    Effect::new(move |_| match set_role.value().get() {
        Some(Ok(())) => {
            toasts.success("Role changed.");
            version.update(|v| *v += 1);
        }
        Some(Err(e)) => {
            toasts.error(e.to_string());
            version.update(|v| *v += 1);
        }
        None => {}
    });
    Effect::new(move |_| match remove.value().get() {
        Some(Ok(())) => {
            toasts.success("Member removed.");
            version.update(|v| *v += 1);
        }
        Some(Err(e)) => toasts.error(e.to_string()),
        None => {}
    });
    Effect::new(move |_| {
        if let Some(Ok(invitation)) = invite.value().get() {
            toasts.success(format!("Invitation sent to {}.", invitation.email));
            invite_email.set(String::new());
            version.update(|v| *v += 1);
        }
    });
    Effect::new(move |_| match revoke.value().get() {
        Some(Ok(())) => {
            toasts.success("Invitation withdrawn.");
            version.update(|v| *v += 1);
        }
        Some(Err(e)) => toasts.error(e.to_string()),
        None => {}
    });

    view! {
        <PageHeader title="Members" subtitle="Who can see and change this organisation's firewalls."/>
        <SettingsNav/>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
        <Show when=move || role.get().is_some_and(Role::can_administer)>
            <section class="card" aria-labelledby="invite-heading">
                <h2 id="invite-heading">"Invite someone"</h2>
                <form class="form form-inline" on:submit=move |ev| {
                    ev.prevent_default();
                    invite.dispatch(InviteMember { email: invite_email.get(), role: invite_role.get() });
                }>
                    <TextField label="Email" name="invite-email" input_type="email" value=invite_email required=true/>
                    <div class="field">
                        <label for="invite-role">"Role"</label>
                        <select
                            id="invite-role"
                            on:change=move |ev| {
                                if let Some(r) = Role::parse(&event_target_value(&ev)) { invite_role.set(r); }
                            }
                        >
                            {move || Role::ALL.into_iter()
                                .filter(|r| role.get().is_some_and(|mine| mine.can_grant(*r)))
                                .map(|r| view! {
                                    <option value=r.as_str() selected=move || invite_role.get() == r>
                                        {format!("{} — {}", r.label(), r.describe())}
                                    </option>
                                })
                                .collect_view()}
                        </select>
                    </div>
                    <div class="form-actions">
                        <button type="submit" class="btn btn-primary" disabled=move || invite.pending().get()>"Send invitation"</button>
                    </div>
                </form>
                <FormError error=error_of(invite.value())/>
            </section>
        </Show>
        <section class="card" aria-labelledby="members-heading">
            <h2 id="members-heading">"Members"</h2>
            <div class="field">
                <label for="member-search">"Search by email"</label>
                <input
                    id="member-search"
                    type="search"
                    prop:value=move || search.get()
                    on:input=move |ev| search.set(event_target_value(&ev))
                />
            </div>
            <div class="table-wrap">
                <table class="table" aria-label="Members">
                    <thead>
                        <tr><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Joined"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr>
                    </thead>
                    <Transition fallback=|| view! { <tbody><tr><td colspan="4">"Loading…"</td></tr></tbody> }>
                        {move || members.get().map(|result| match result {
                            Err(e) => view! { <tbody><tr><td colspan="4" class="field-error" role="alert">{e.to_string()}</td></tr></tbody> }.into_any(),
                            Ok(list) if list.is_empty() => view! { <tbody><tr><td colspan="4" class="table-empty">"No member matches."</td></tr></tbody> }.into_any(),
                            Ok(list) => view! {
                                <tbody>
                                    {list.into_iter().map(|member| {
                                        let mine = role.get();
                                        let editable = !member.is_you && mine.is_some_and(|m| m.can_grant(member.role));
                                        let user_id = member.user_id.clone();
                                        let for_remove = member.clone();
                                        view! {
                                            <tr data-testid="member-row">
                                                <td>{member.email.clone()}{member.is_you.then(|| view! { <span class="muted">" (you)"</span> })}</td>
                                                <td>
                                                    {if editable {
                                                        let label = format!("Role of {}", member.email);
                                                        view! {
                                                            <select aria-label=label on:change=move |ev| {
                                                                if let Some(r) = Role::parse(&event_target_value(&ev)) {
                                                                    set_role.dispatch(SetMemberRole { user_id: user_id.clone(), role: r });
                                                                }
                                                            }>
                                                                {Role::ALL.into_iter()
                                                                    .filter(|r| mine.is_some_and(|m| m.can_grant(*r)))
                                                                    .map(|r| view! { <option value=r.as_str() selected=r == member.role>{r.label()}</option> })
                                                                    .collect_view()}
                                                            </select>
                                                        }.into_any()
                                                    } else {
                                                        view! { <span>{member.role.label()}</span> }.into_any()
                                                    }}
                                                </td>
                                                <td>{utc_datetime(member.joined_at_ms)}</td>
                                                <td>
                                                    {editable.then(|| view! {
                                                        <button class="btn btn-ghost" on:click=move |_| {
                                                            removing.set(Some(for_remove.clone()));
                                                            remove_open.set(true);
                                                        }>"Remove"</button>
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            }.into_any(),
                        })}
                    </Transition>
                </table>
            </div>
            <ConfirmDialog
                open=remove_open
                id="remove-member-dialog"
                title="Remove this member?"
                confirm_label="Remove"
                danger=true
                on_confirm=Callback::new(move |()| {
                    if let Some(member) = removing.get_untracked() {
                        remove.dispatch(RemoveMember { user_id: member.user_id });
                    }
                })
            >
                <p>{move || removing.get().map(|m| format!("{} loses access to this organisation at once.", m.email))}</p>
            </ConfirmDialog>
        </section>
        <Show when=move || role.get().is_some_and(Role::can_administer)>
            <section class="card" aria-labelledby="invitations-heading">
                <h2 id="invitations-heading">"Pending invitations"</h2>
                <Transition fallback=|| view! { <p>"Loading…"</p> }>
                    {move || invitations.get().map(|result| match result {
                        Err(e) => view! { <p class="field-error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(list) if list.is_empty() => view! { <p class="muted">"No pending invitations."</p> }.into_any(),
                        Ok(list) => view! {
                            <table class="table" aria-label="Pending invitations">
                                <thead><tr><th scope="col">"Email"</th><th scope="col">"Role"</th><th scope="col">"Invited by"</th><th scope="col">"Expires"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                                <tbody>
                                    {list.into_iter().map(|inv| {
                                        let id = inv.id.clone();
                                        view! {
                                            <tr>
                                                <td>{inv.email}</td>
                                                <td>{inv.role.label()}</td>
                                                <td>{inv.invited_by.unwrap_or_default()}</td>
                                                <td>{utc_datetime(inv.expires_at_ms)}</td>
                                                <td><button class="btn btn-ghost" on:click=move |_| { revoke.dispatch(RevokeInvitation { id: id.clone() }); }>"Withdraw"</button></td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        }.into_any(),
                    })}
                </Transition>
            </section>
        </Show>
        </Transition>
    }
}

#[component]
pub fn JobsPage() -> impl IntoView {
    let toasts = use_toasts();
    let failed_only = RwSignal::new(false);
    let version = RwSignal::new(0u32);
    let jobs = Resource::new(
        move || (failed_only.get(), version.get()),
        |(failed, _)| list_jobs(failed),
    );
    let retry = ServerAction::<RetryJob>::new();
    Effect::new(move |_| match retry.value().get() {
        Some(Ok(())) => {
            toasts.success("Job queued again.");
            version.update(|v| *v += 1);
        }
        Some(Err(e)) => toasts.error(e.to_string()),
        None => {}
    });
    view! {
        <PageHeader title="Jobs" subtitle="Background work of this organisation: mail now; polling, backups and rollouts later."/>
        <SettingsNav/>
        <section class="card">
            <div class="row">
                <label>
                    <input type="checkbox" prop:checked=move || failed_only.get() on:change=move |ev| failed_only.set(event_target_checked(&ev))/>
                    " Failed only"
                </label>
                <button class="btn" on:click=move |_| version.update(|v| *v += 1)>"Refresh"</button>
            </div>
            <Transition fallback=|| view! { <p>"Loading…"</p> }>
                {move || jobs.get().map(|result| match result {
                    Err(e) => view! { <p class="field-error" role="alert">{e.to_string()}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="muted">"No jobs."</p> }.into_any(),
                    Ok(list) => view! {
                        <table class="table" aria-label="Jobs">
                            <thead><tr><th scope="col">"Job"</th><th scope="col">"State"</th><th scope="col">"Attempts"</th><th scope="col">"Last error"</th><th scope="col">"Updated"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th></tr></thead>
                            <tbody>
                                {list.into_iter().map(|job| {
                                    let id = job.id.clone();
                                    let failed = job.state == "failed";
                                    view! {
                                        <tr>
                                            <td>{job.title}</td>
                                            <td><span class=format!("badge badge-job-{}", job.state)>{job.state.clone()}</span></td>
                                            <td>{format!("{} of {}", job.attempts, job.max_attempts)}</td>
                                            <td class="wrap">{job.last_error.unwrap_or_default()}</td>
                                            <td>{utc_datetime(job.updated_at_ms)}</td>
                                            <td>{failed.then(|| view! {
                                                <button class="btn" on:click=move |_| { retry.dispatch(RetryJob { id: id.clone() }); }>"Retry"</button>
                                            })}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    }.into_any(),
                })}
            </Transition>
        </section>
    }
}
