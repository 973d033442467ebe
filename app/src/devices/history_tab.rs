//! The device page's History tab: the configuration revisions Mudmap backed up, newest first, with
//! pfSense's own note of each change; "Back up now" for operators and above; any two revisions
//! compared in words with the raw XML diff one click away (secrets masked; owners and admins may
//! reveal them, audited); download of a revision (owners and admins, audited). Read when the tab
//! is first opened; the state lives on the page so live re-renders keep it.

use leptos::prelude::*;

use super::backups::{
    back_up_now, compare_revisions, download_revision, fetch_revisions, Comparison, RawLine,
    Revision, RevisionRef,
};
use crate::auth::use_role;
use crate::error::AppError;
use crate::roles::Role;
use crate::ui::download::save_text;
use crate::ui::format::{bytes, utc_datetime};
use crate::ui::toast::use_toasts;

/// Which comparison is asked for: (from — none for "the one before", to, reveal secrets).
type Asked = (Option<String>, String, bool);

/// The tab's data, owned by the device page.
#[derive(Clone, Copy)]
pub struct HistoryState {
    opened: RwSignal<bool>,
    refresh: RwSignal<u32>,
    revisions: Resource<Option<Result<Vec<Revision>, AppError>>>,
    /// The comparison shown, and its result.
    asked: RwSignal<Option<Asked>>,
    comparison: Resource<Option<Result<Comparison, AppError>>>,
    /// The two revisions picked in the compare form (ids).
    pick_from: RwSignal<String>,
    pick_to: RwSignal<String>,
    /// Whether the raw XML diff is open.
    raw_open: RwSignal<bool>,
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
        let asked = RwSignal::new(None::<Asked>);
        let comparison = Resource::new(
            move || asked.get(),
            |asked| async move {
                match asked {
                    Some((from, to, reveal)) => Some(compare_revisions(from, to, reveal).await),
                    None => None,
                }
            },
        );
        Self {
            opened,
            refresh,
            revisions,
            asked,
            comparison,
            pick_from: RwSignal::new(String::new()),
            pick_to: RwSignal::new(String::new()),
            raw_open: RwSignal::new(false),
        }
    }

    /// Show a comparison (from the device page's drift notice, say): opens the tab's data.
    pub fn compare(&self, from: Option<String>, to: String) {
        self.opened.set(true);
        self.raw_open.set(false);
        self.asked.set(Some((from, to, false)));
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
        asked,
        comparison,
        pick_from,
        pick_to,
        raw_open,
    } = state;
    Effect::new(move |_| {
        if shown.get() && !opened.get_untracked() {
            opened.set(true);
        }
    });
    let role = use_role();
    let can_back_up = Signal::derive(move || managed && role.get().is_some_and(Role::can_operate));
    let is_admin = Signal::derive(move || role.get().is_some_and(Role::can_administer));
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
    let download = move |id: String| {
        leptos::task::spawn_local(async move {
            match download_revision(id).await {
                Ok(file) => match save_text(&file.file_name, "application/xml", &file.xml) {
                    Ok(()) => toasts.success(format!("Saved as {}.", file.file_name)),
                    Err(e) => toasts.error(e),
                },
                Err(e) => toasts.error(e.to_string()),
            }
        });
    };
    let show = move |from: Option<String>, to: String| {
        raw_open.set(false);
        asked.set(Some((from, to, false)));
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
                Some(Ok(list)) => {
                    // The compare form starts at the newest and the one before it.
                    if pick_to.get_untracked().is_empty() || !list.iter().any(|r| r.id == pick_to.get_untracked()) {
                        pick_to.set(list.first().map(|r| r.id.clone()).unwrap_or_default());
                        pick_from.set(list.get(1).map(|r| r.id.clone()).unwrap_or_default());
                    }
                    let options = list.iter().map(|r| (r.id.clone(), format!("{} · {}", utc_datetime(r.taken_at_ms), r.source_label()))).collect::<Vec<_>>();
                    view! {
                        {(list.len() >= 2).then(|| compare_form(options, pick_from, pick_to, show))}
                        <div class="table-wrap">
                            <table class="table" aria-label="Configuration history">
                                <thead><tr>
                                    <th scope="col">"Backed up"</th><th scope="col">"Why"</th><th scope="col">"pfSense's note"</th>
                                    <th scope="col">"By"</th><th scope="col">"Size"</th><th scope="col">"Hash"</th>
                                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                                </tr></thead>
                                <tbody>
                                    {list.is_empty().then(|| view! {
                                        <tr><td colspan="7" class="table-empty">"No backups yet."</td></tr>
                                    })}
                                    {list.into_iter().map(|r| {
                                        let short = r.config_hash.trim_start_matches("sha256:").chars().take(12).collect::<String>();
                                        let why = r.source_label();
                                        let when = utc_datetime(r.taken_at_ms);
                                        let (id, id2) = (r.id.clone(), r.id.clone());
                                        let label = format!("What changed in the backup of {when}");
                                        let download_label = format!("Download the backup of {when}");
                                        view! {
                                            <tr data-testid="revision-row">
                                                <td>{when}</td>
                                                <td>{why}</td>
                                                <td>{r.pf_description}</td>
                                                <td>{r.pf_username}</td>
                                                <td>{bytes(r.size)}</td>
                                                <td class="mono" title=r.config_hash.clone()>{short}</td>
                                                <td class="row">
                                                    <button type="button" class="btn btn-ghost" aria-label=label
                                                        on:click=move |_| show(None, id.clone())>"What changed"</button>
                                                    {move || is_admin.get().then(|| {
                                                        let id = id2.clone();
                                                        view! {
                                                            <button type="button" class="btn btn-ghost" aria-label=download_label.clone()
                                                                on:click=move |_| download(id.clone())>"Download"</button>
                                                        }
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                }
            }}
        </Transition>
        {move || asked.get().map(|(_, to, revealed)| view! {
            <section aria-label="Comparison" class="changes">
                <Transition fallback=|| view! { <p class="hint">"Comparing…"</p> }>
                    {move || comparison.get().flatten().map(|result| match result {
                        Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                        Ok(found) => {
                            let from_id = found.from.as_ref().map(|f| f.id.clone());
                            let to = to.clone();
                            let reveal = move |on: bool| asked.set(Some((from_id.clone(), to.clone(), on)));
                            comparison_view(found, raw_open, is_admin, revealed, reveal).into_any()
                        }
                    })}
                </Transition>
            </section>
        })}
    }
}

/// "Compare [older ▾] with [newer ▾]".
fn compare_form(
    options: Vec<(String, String)>,
    pick_from: RwSignal<String>,
    pick_to: RwSignal<String>,
    show: impl Fn(Option<String>, String) + Copy + 'static,
) -> impl IntoView {
    let select = move |label: &'static str, pick: RwSignal<String>| {
        let options = options.clone();
        view! {
            <label class="field-inline">{label}" "
                <select aria-label=label prop:value=move || pick.get()
                    on:change=move |ev| pick.set(event_target_value(&ev))>
                    {options.into_iter().map(|(id, text)| {
                        let selected = pick.get_untracked() == id;
                        view! { <option value=id selected=selected>{text}</option> }
                    }).collect_view()}
                </select>
            </label>
        }
    };
    view! {
        <form class="row" aria-label="Compare two backups" on:submit=move |ev| {
            ev.prevent_default();
            show(Some(pick_from.get_untracked()), pick_to.get_untracked());
        }>
            {select("Compare", pick_from)}
            {select("with", pick_to)}
            <button type="submit" class="btn btn-ghost">"Compare"</button>
        </form>
    }
}

/// A revision's name in a sentence.
fn backup_of(r: &RevisionRef) -> String {
    format!("the backup of {}", utc_datetime(r.taken_at_ms))
}

/// A comparison: what changed in words, grouped by section, and the raw XML diff behind a button.
fn comparison_view(
    found: Comparison,
    raw_open: RwSignal<bool>,
    is_admin: Signal<bool>,
    revealed: bool,
    reveal: impl Fn(bool) + Clone + Send + Sync + 'static,
) -> impl IntoView {
    let heading = match &found.from {
        None => format!("What changed in {}", backup_of(&found.to)),
        Some(from) => format!(
            "{} compared with {}",
            capitalised(&backup_of(&found.to)),
            backup_of(from)
        ),
    };
    let note = match (&found.from, found.changes.is_empty()) {
        (None, _) => {
            "The first backup of this firewall: there is nothing to compare it with.".to_owned()
        }
        (Some(from), true) if found.raw.is_empty() => {
            format!("Nothing changed since {}.", backup_of(from))
        }
        (Some(_), true) => {
            "Only pfSense's bookkeeping changed (revision stamps and the like).".to_owned()
        }
        (Some(_), false) => format!("{} change(s), by section:", found.changes.len()),
    };
    let has_raw = !found.raw.is_empty();
    let truncated = found.raw_truncated;
    let raw = StoredValue::new(found.raw);
    let reveal_off = reveal.clone();
    view! {
        <h3>{heading}</h3>
        <p class="hint">{note}</p>
        <ul data-testid="config-changes">
            {found.changes.into_iter().map(|c| view! {
                <li><strong>{c.section}</strong>": "{c.text}</li>
            }).collect_view()}
        </ul>
        {has_raw.then(|| view! {
            <p class="row">
                <button type="button" class="btn btn-ghost" aria-expanded=move || raw_open.get().to_string()
                    on:click=move |_| raw_open.update(|open| *open = !*open)>
                    {move || if raw_open.get() { "Hide the raw XML diff" } else { "Show the raw XML diff" }}
                </button>
                {move || (raw_open.get() && is_admin.get()).then(|| {
                    let (on, off) = (reveal.clone(), reveal_off.clone());
                    if revealed {
                        view! { <button type="button" class="btn btn-ghost" on:click=move |_| off(false)>"Hide secrets"</button> }.into_any()
                    } else {
                        view! { <button type="button" class="btn btn-ghost" on:click=move |_| on(true)>"Reveal secrets"</button> }.into_any()
                    }
                })}
            </p>
        })}
        {move || raw_open.get().then(|| view! {
            <p class="hint">{if revealed {
                "Secrets are shown, and that you looked is recorded in the audit log."
            } else {
                "Secrets (password hashes, keys, pre-shared keys) are masked."
            }}</p>
            <pre class="raw-diff" data-testid="raw-diff">
                {raw.get_value().into_iter().map(raw_line).collect_view()}
            </pre>
            {truncated.then(|| view! { <p class="hint">"The diff is longer than shown here; download both backups to compare them in full."</p> })}
        })}
    }
}

fn raw_line(line: RawLine) -> impl IntoView {
    let class = match line.kind {
        '+' => "diff-add",
        '-' => "diff-del",
        '@' => "diff-hunk",
        _ => "diff-ctx",
    };
    let prefix = if line.kind == '@' {
        "@@ ".to_owned()
    } else {
        format!("{} ", line.kind)
    };
    view! { <span class=class>{prefix}{line.text}"\n"</span> }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}
