//! `/search`: fleet-wide search. Filters are rows (field, operator, value); "Search" puts the
//! query in the URL (`?q=`, its text form) so a search can be reloaded, bookmarked and shared, and
//! the results — each thing that matched, on which firewall, in which section — come from the
//! server. A bad query is answered with the line and the field that are wrong.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

use super::{find_field, search_fleet, FieldKind, Op, SearchAnswer, FIELDS};
use crate::error::AppError;
use crate::ui::page::PageHeader;

/// One filter row as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    key: u32,
    field: String,
    op: String,
    value: String,
}

/// Searches offered as a start.
const EXAMPLES: [(&str, &str); 5] = [
    ("Firewalls with the alias WEB", "alias.name is web"),
    (
        "Rules that pass port 22 from any",
        "rule.action is pass\nrule.source is any\nrule.port is 22",
    ),
    ("pfSense older than 2.7", "pfsense.version < 2.7"),
    ("The user bob", "user.name is bob"),
    ("The package pfBlockerNG", "package.name is pfblockerng"),
];

/// `text` for a URL's query string.
fn encoded(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The rows a query's text stands for (lines that do not parse are kept as typed).
fn rows_of(text: &str) -> Vec<Row> {
    let rows: Vec<Row> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .zip(0u32..)
        .map(|(line, key)| {
            let mut parts = line.trim().splitn(3, char::is_whitespace);
            Row {
                key,
                field: parts.next().unwrap_or_default().to_owned(),
                op: parts.next().unwrap_or_default().to_owned(),
                value: parts.next().unwrap_or_default().trim().to_owned(),
            }
        })
        .collect();
    if rows.is_empty() {
        vec![Row {
            key: 0,
            field: "rule.port".to_owned(),
            op: "is".to_owned(),
            value: String::new(),
        }]
    } else {
        rows
    }
}

fn text_of(rows: &[Row]) -> String {
    rows.iter()
        .map(|r| format!("{} {} {}", r.field, r.op, r.value.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Where a result's section is shown on the device page.
fn tab_of(section: &str) -> &'static str {
    match section {
        "rules" | "aliases" | "nat" => "firewall",
        "interfaces" => "interfaces",
        _ => "system",
    }
}

#[component]
pub fn SearchPage() -> impl IntoView {
    let query = use_query_map();
    let asked = Memo::new(move |_| query.read().get("q").unwrap_or_default());
    let rows = RwSignal::new(rows_of(&asked.get_untracked()));
    let next_key = RwSignal::new(100u32);
    // A new URL (back, an example, a shared link) refills the rows.
    Effect::new(move |_| {
        let text = asked.get();
        if !text.is_empty() {
            rows.set(rows_of(&text));
        }
    });
    // Searching again with the same query runs it again (new backups may have arrived).
    let runs = RwSignal::new(0u32);
    let answer = Resource::new(
        move || (asked.get(), runs.get()),
        |(text, _)| async move {
            if text.trim().is_empty() {
                None
            } else {
                Some(search_fleet(text).await)
            }
        },
    );
    let navigate = use_navigate();
    let go = StoredValue::new(move |text: String| {
        navigate(&format!("/search?q={}", encoded(&text)), Default::default());
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text = text_of(&rows.get_untracked());
        if text == asked.get_untracked() {
            runs.update(|n| *n += 1);
        } else {
            go.with_value(|go| go(text));
        }
    };
    let add = move |_| {
        let key = next_key.get_untracked();
        next_key.set(key + 1);
        rows.update(|r| {
            r.push(Row {
                key,
                field: "rule.action".to_owned(),
                op: "is".to_owned(),
                value: String::new(),
            })
        });
    };
    view! {
        <PageHeader title="Search" subtitle="Every firewall's newest configuration: rules, aliases, NAT, users, packages, versions."/>
        <form class="card search-form" aria-label="Search the fleet" on:submit=submit>
            <For each=move || rows.get() key=|r| r.key let:row>
                <FilterRow row rows/>
            </For>
            <p class="row">
                <button type="button" class="btn btn-ghost" on:click=add
                    disabled=move || rows.with(|r| r.len() >= super::MAX_FILTERS)>"Add a filter"</button>
                <button type="submit" class="btn">"Search"</button>
            </p>
            <p class="hint">"Filters on rules must all hold for the same rule; filters on different things (a rule and a version, say) for the same firewall."</p>
        </form>
        <p class="row examples">
            <span class="hint">"Try:"</span>
            {EXAMPLES.into_iter().map(|(label, text)| view! {
                <a href=format!("/search?q={}", encoded(text))>{label}</a>
            }).collect_view()}
        </p>
        <Transition fallback=|| view! { <p class="hint">"Searching…"</p> }>
            {move || answer.get().flatten().map(results)}
        </Transition>
    }
}

#[component]
fn FilterRow(row: Row, rows: RwSignal<Vec<Row>>) -> impl IntoView {
    let key = row.key;
    let update = move |change: &dyn Fn(&mut Row)| {
        rows.update(|all| {
            if let Some(r) = all.iter_mut().find(|r| r.key == key) {
                change(r);
            }
        })
    };
    let current = move || rows.with(|all| all.iter().find(|r| r.key == key).cloned());
    let kind = move || {
        current()
            .and_then(|r| find_field(&r.field))
            .map_or(FieldKind::Text, |f| f.kind)
    };
    let example = move || {
        current()
            .and_then(|r| find_field(&r.field))
            .map_or("", |f| f.example)
    };
    let field_label = format!("Field {}", key + 1);
    let op_label = format!("Operator {}", key + 1);
    let value_label = format!("Value {}", key + 1);
    view! {
        <div class="row filter-row" data-testid="filter-row">
            <select aria-label=field_label prop:value=move || current().map(|r| r.field).unwrap_or_default()
                on:change=move |ev| {
                    let field = event_target_value(&ev);
                    let first = find_field(&field).map_or(Op::Is, |f| Op::for_kind(f.kind)[0]);
                    update(&|r| {
                        r.field = field.clone();
                        if !find_field(&field).is_some_and(|f| Op::for_kind(f.kind).iter().any(|o| o.as_str() == r.op)) {
                            r.op = first.as_str().to_owned();
                        }
                    });
                }>
                {FIELDS.iter().map(|f| view! {
                    <option value=f.name selected=row.field == f.name>{f.label}</option>
                }).collect_view()}
            </select>
            <select aria-label=op_label prop:value=move || current().map(|r| r.op).unwrap_or_default()
                on:change=move |ev| { let op = event_target_value(&ev); update(&|r| r.op = op.clone()); }>
                {move || Op::for_kind(kind()).iter().map(|op| view! {
                    <option value=op.as_str()>{op.label()}</option>
                }).collect_view()}
            </select>
            <input type="text" aria-label=value_label placeholder=example maxlength=super::MAX_VALUE
                prop:value=move || current().map(|r| r.value).unwrap_or_default()
                on:input=move |ev| { let value = event_target_value(&ev); update(&|r| r.value = value.clone()); }/>
            <button type="button" class="btn btn-ghost" aria-label=format!("Remove filter {}", key + 1)
                disabled=move || rows.with(|r| r.len() <= 1)
                on:click=move |_| rows.update(|all| all.retain(|r| r.key != key))>"Remove"</button>
        </div>
    }
}

fn results(answer: Result<SearchAnswer, AppError>) -> AnyView {
    let answer = match answer {
        Err(e) => {
            return view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any()
        }
        Ok(a) => a,
    };
    let summary = format!(
        "{}{} match(es) on {} firewall(s), of {} searched, in {} ms.",
        answer.hits.len(),
        if answer.more { "+" } else { "" },
        answer.devices,
        answer.searched,
        answer.took_ms
    );
    view! {
        <p class="hint" role="status" data-testid="search-summary">{summary}</p>
        {answer.more.then(|| view! {
            <p class="hint">"Only the first matches are listed: add a filter to narrow the search."</p>
        })}
        <div class="table-wrap">
            <table class="table" aria-label="Search results">
                <thead><tr><th scope="col">"Firewall"</th><th scope="col">"Section"</th><th scope="col">"Match"</th></tr></thead>
                <tbody>
                    {answer.hits.is_empty().then(|| view! {
                        <tr><td colspan="3" class="table-empty">"Nothing matches on any firewall."</td></tr>
                    })}
                    {answer.hits.into_iter().map(|hit| view! {
                        <tr data-testid="search-hit">
                            <td><a href=format!("/devices/{}?tab={}", hit.device_id, tab_of(&hit.section))>{hit.device_name}</a></td>
                            <td>{hit.section}</td>
                            <td>{hit.label}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}
