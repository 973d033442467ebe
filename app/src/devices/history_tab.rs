//! The device page's History tab: the configuration revisions Mudmap backed up, newest first, with
//! pfSense's own note of each change, and "Back up now" for operators and above. Read when the tab
//! is first opened; the state lives on the page so live re-renders keep it.

use leptos::prelude::*;

use super::backups::{
    back_up_now, fetch_revision_changes, fetch_revisions, Revision, RevisionChanges,
};
use crate::auth::use_role;
use crate::error::AppError;
use crate::roles::Role;
use crate::ui::format::{bytes, utc_datetime};
use crate::ui::toast::use_toasts;

/// The tab's data, owned by the device page.
#[derive(Clone, Copy)]
pub struct HistoryState {
    opened: RwSignal<bool>,
    refresh: RwSignal<u32>,
    revisions: Resource<Option<Result<Vec<Revision>, AppError>>>,
    /// The revision whose changes are shown, and its changes.
    selected: RwSignal<Option<(String, i64)>>,
    changes: Resource<Option<Result<RevisionChanges, AppError>>>,
}

impl HistoryState {
    pub fn new(device_id: Signal<String>) -> Self {
        let opened = RwSignal::new(false);
        let refresh = RwSignal::new(0u32);
        let revisions = Resource::new(
            move || (device_id.get(), opened.get(), refresh.get()),
            |(id, wanted, _)| async move {
                if wanted {
                    Some(fetch_revisions(id).await)
                } else {
                    None
                }
            },
        );
        let selected = RwSignal::new(None::<(String, i64)>);
        let changes = Resource::new(
            move || selected.get().map(|(id, _)| id),
            |id| async move {
                match id {
                    Some(id) => Some(fetch_revision_changes(id).await),
                    None => None,
                }
            },
        );
        Self {
            opened,
            refresh,
            revisions,
            selected,
            changes,
        }
    }
}

#[component]
pub fn HistoryTab(
    state: HistoryState,
    device_id: String,
    /// Only an active device can be backed up.
    managed: bool,
    /// Whether the tab is showing (the history is read the first time it is).
    shown: Signal<bool>,
) -> impl IntoView {
    let HistoryState {
        opened,
        refresh,
        revisions,
        selected,
        changes,
    } = state;
    Effect::new(move |_| {
        if shown.get() && !opened.get_untracked() {
            opened.set(true);
        }
    });
    let role = use_role();
    let can_back_up = Signal::derive(move || managed && role.get().is_some_and(Role::can_operate));
    let toasts = use_toasts();
    let busy = RwSignal::new(false);
    let device = StoredValue::new(device_id);
    let back_up = move |_| {
        busy.set(true);
        let id = device.get_value();
        leptos::task::spawn_local(async move {
            match back_up_now(id).await {
                Ok(()) => {
                    toasts.success("Backup queued: it appears here in a few seconds.");
                    // The job runs at once; read again when it has had time to finish.
                    for wait in [1_500, 4_000] {
                        set_timeout(
                            move || refresh.update(|n| *n += 1),
                            std::time::Duration::from_millis(wait),
                        );
                    }
                }
                Err(e) => toasts.error(e.to_string()),
            }
            busy.set(false);
        });
    };
    view! {
        <p class="row">
            <span class="hint">"Every backup of this firewall's configuration, newest first. Stored encrypted; identical configurations are stored once."</span>
            <button type="button" class="btn btn-ghost" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
            {move || can_back_up.get().then(|| view! {
                <button type="button" class="btn" disabled=move || busy.get() on:click=back_up>"Back up now"</button>
            })}
        </p>
        <Transition fallback=|| view! { <p class="hint">"Reading the history…"</p> }>
            {move || match revisions.get().flatten() {
                None => view! { <p class="hint">"Reading the history…"</p> }.into_any(),
                Some(Err(e)) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <div class="table-wrap">
                        <table class="table" aria-label="Configuration history">
                            <thead><tr>
                                <th scope="col">"Backed up"</th><th scope="col">"Why"</th><th scope="col">"pfSense's note"</th>
                                <th scope="col">"By"</th><th scope="col">"Size"</th><th scope="col">"Hash"</th>
                                <th scope="col"><span class="visually-hidden">"Changes"</span></th>
                            </tr></thead>
                            <tbody>
                                {list.is_empty().then(|| view! {
                                    <tr><td colspan="7" class="table-empty">"No backups yet."</td></tr>
                                })}
                                {list.into_iter().map(|r| {
                                    let short = r.config_hash.trim_start_matches("sha256:").chars().take(12).collect::<String>();
                                    let why = r.source_label();
                                    let (id, at) = (r.id.clone(), r.taken_at_ms);
                                    let label = format!("What changed in the backup of {}", utc_datetime(at));
                                    view! {
                                        <tr data-testid="revision-row">
                                            <td>{utc_datetime(r.taken_at_ms)}</td>
                                            <td>{why}</td>
                                            <td>{r.pf_description}</td>
                                            <td>{r.pf_username}</td>
                                            <td>{bytes(r.size)}</td>
                                            <td class="mono" title=r.config_hash.clone()>{short}</td>
                                            <td><button type="button" class="btn btn-ghost" aria-label=label
                                                on:click=move |_| selected.set(Some((id.clone(), at)))>"What changed"</button></td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
            }}
        </Transition>
        {move || selected.get().map(|(_, at)| view! {
            <section aria-label="Changes in this backup" class="changes">
                <h3>{format!("What changed in the backup of {}", utc_datetime(at))}</h3>
                <Transition fallback=|| view! { <p class="hint">"Comparing…"</p> }>
                    {move || changes.get().flatten().map(|result| match result {
                        Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(found) => changes_view(found).into_any(),
                    })}
                </Transition>
            </section>
        })}
    }
}

/// The changes of one revision, grouped by section, or why there are none.
fn changes_view(found: RevisionChanges) -> impl IntoView {
    let note = match (&found.previous_at_ms, found.changes.is_empty()) {
        (None, _) => Some(
            "The first backup of this firewall: there is nothing to compare it with.".to_owned(),
        ),
        (Some(at), true) => Some(format!(
            "Nothing changed since the backup of {}.",
            utc_datetime(*at)
        )),
        (Some(at), false) => Some(format!(
            "Compared with the backup of {}.",
            utc_datetime(*at)
        )),
    };
    view! {
        {note.map(|n| view! { <p class="hint">{n}</p> })}
        <ul data-testid="config-changes">
            {found.changes.into_iter().map(|c| view! {
                <li><strong>{c.section}</strong>": "{c.text}</li>
            }).collect_view()}
        </ul>
    }
}
