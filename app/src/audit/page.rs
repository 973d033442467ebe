//! `/audit`: the organisation's audit log for owners and admins — filters (who, device or
//! subject, kind of action, from/to day), the entries newest first a page at a time, and an export
//! of everything the filters match as CSV.

use leptos::prelude::*;

use super::{export_audit, list_audit, AuditPage, KINDS};
use crate::ui::format::utc_datetime;
use crate::ui::page::PageHeader;

/// The filters as typed: (who, subject, action, from, to).
type Form = (String, String, String, String, String);

#[component]
pub fn AuditPage() -> impl IntoView {
    let actor = RwSignal::new(String::new());
    let subject = RwSignal::new(String::new());
    let action = RwSignal::new(String::new());
    let since = RwSignal::new(String::new());
    let until = RwSignal::new(String::new());
    // What is shown: the filters as last applied, and the page (cursors of the pages before it).
    let applied = RwSignal::new(Form::default());
    let cursors = RwSignal::new(Vec::<String>::new());
    let page = Resource::new(
        move || {
            (
                applied.get(),
                cursors.get().last().cloned().unwrap_or_default(),
            )
        },
        |((actor, subject, action, since, until), after)| async move {
            list_audit(actor, subject, action, since, until, after).await
        },
    );
    let form = move || {
        (
            actor.get_untracked(),
            subject.get_untracked(),
            action.get_untracked(),
            since.get_untracked(),
            until.get_untracked(),
        )
    };
    let show = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        cursors.set(Vec::new());
        applied.set(form());
        page.refetch();
    };
    let exported = RwSignal::new(None::<Result<String, String>>);
    let export = Action::new(move |form: &Form| {
        let (actor, subject, action, since, until) = form.clone();
        async move {
            let answer = export_audit(actor, subject, action, since, until).await;
            let outcome = match answer {
                Ok(file) => crate::ui::download::save_text(&file.file_name, "text/csv", &file.csv)
                    .map(|()| {
                        if file.truncated {
                            format!("Exported the newest {} entries; narrow the filters for older ones.", file.rows)
                        } else {
                            format!("Exported {} entries.", file.rows)
                        }
                    }),
                Err(e) => Err(e.to_string()),
            };
            exported.set(Some(outcome));
        }
    });
    view! {
        <PageHeader title="Audit log" subtitle="Who did what, to which thing, and when: every change, device events, members, sign-ins. Entries are never changed."/>
        <form class="audit-filters" on:submit=show aria-label="Filter the audit log">
            <label>"Who" <input type="search" name="actor" placeholder="e-mail" maxlength="200" bind:value=actor/></label>
            <label>"Device or subject" <input type="search" name="subject" maxlength="200" bind:value=subject/></label>
            <label>"Action"
                <select name="action" on:change=move |ev| action.set(event_target_value(&ev)) prop:value=move || action.get()>
                    {KINDS.iter().map(|(value, label)| view! { <option value=*value>{*label}</option> }).collect_view()}
                </select>
            </label>
            <label>"From" <input type="date" name="since" bind:value=since/></label>
            <label>"To" <input type="date" name="until" bind:value=until/></label>
            <button type="submit" class="btn">"Show"</button>
            <button type="button" class="btn btn-secondary" disabled=move || export.pending().get()
                on:click=move |_| { exported.set(None); export.dispatch(form()); }>
                {move || if export.pending().get() { "Exporting…" } else { "Export CSV" }}
            </button>
        </form>
        {move || exported.get().map(|outcome| match outcome {
            Ok(text) => view! { <p class="notice" role="status">{text}</p> }.into_any(),
            Err(text) => view! { <p class="error" role="alert">{text}</p> }.into_any(),
        })}
        <Transition fallback=|| view! { <p aria-busy="true">"Loading the audit log…"</p> }>
            {move || page.get().map(|answer| match answer {
                Err(e) => view! { <p class="error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(AuditPage { entries, next }) => {
                    let first = cursors.with(Vec::is_empty);
                    view! {
                        {if entries.is_empty() {
                            view! { <p data-testid="audit-empty">"No entries match these filters."</p> }.into_any()
                        } else {
                            view! {
                                <table class="table" aria-label="Audit entries">
                                    <thead><tr><th scope="col">"When"</th><th scope="col">"Who"</th><th scope="col">"Action"</th><th scope="col">"Subject"</th><th scope="col">"Detail"</th></tr></thead>
                                    <tbody>
                                        {entries.into_iter().map(|e| view! {
                                            <tr data-testid="audit-entry">
                                                <td>{utc_datetime(e.at_ms)}</td>
                                                <td>{if e.actor_email.is_empty() { "Mudmap".to_owned() } else { e.actor_email }}</td>
                                                <td><code>{e.action}</code></td>
                                                <td>{e.subject}</td>
                                                <td>{e.detail}</td>
                                            </tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any()
                        }}
                        <div class="pager">
                            <button type="button" class="btn btn-secondary" disabled=first
                                on:click=move |_| cursors.set(Vec::new())>"Newest"</button>
                            {next.map(|next| view! {
                                <button type="button" class="btn btn-secondary"
                                    on:click=move |_| cursors.update(|c| c.push(next.clone()))>"Older entries"</button>
                            })}
                        </div>
                    }.into_any()
                }
            })}
        </Transition>
    }
}
