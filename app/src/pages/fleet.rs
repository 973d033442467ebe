//! `/`: the fleet at a glance — counts by health (each a filter), then every device in a table
//! with search-as-you-type, tag and group filters, sortable columns and pages of 50. Live: the page follows
//! `/api/events` (server-sent events) and re-reads what it shows when a device's health changes;
//! the browser reconnects by itself after a server restart.

use std::time::Duration;

use leptos::prelude::*;

use crate::fleet::{fleet, FleetPage, FleetRow, SortKey};
use crate::ui::badge::{Health, StateBadge};
use crate::ui::format::{ago, uptime, utc_datetime};
use crate::ui::live::follow_events;
use crate::ui::page::PageHeader;

/// How long typing must pause before the search runs.
const SEARCH_PAUSE: Duration = Duration::from_millis(200);

/// The columns: (sort key, header).
const COLUMNS: [(SortKey, &str); 10] = [
    (SortKey::Name, "Name"),
    (SortKey::Host, "Host"),
    (SortKey::Version, "pfSense"),
    (SortKey::State, "State"),
    (SortKey::LastSeen, "Last seen"),
    (SortKey::Uptime, "Uptime"),
    (SortKey::Cpu, "CPU"),
    (SortKey::Memory, "Memory"),
    (SortKey::Gateways, "Gateways"),
    (SortKey::Agent, "Agent"),
];

/// The table's query, as signals.
#[derive(Clone, Copy)]
struct Query {
    search: RwSignal<String>,
    health: RwSignal<Option<Health>>,
    tag: RwSignal<String>,
    /// A group id, "" for all.
    group: RwSignal<String>,
    sort: RwSignal<SortKey>,
    descending: RwSignal<bool>,
    page: RwSignal<u32>,
}

#[component]
pub fn FleetPage() -> impl IntoView {
    let query = Query {
        search: RwSignal::new(String::new()),
        health: RwSignal::new(None),
        tag: RwSignal::new(String::new()),
        group: RwSignal::new(String::new()),
        sort: RwSignal::new(SortKey::Name),
        descending: RwSignal::new(false),
        page: RwSignal::new(0),
    };
    let typed = RwSignal::new(String::new());
    let live = RwSignal::new(0u32);
    let data = Resource::new(
        move || {
            (
                query.search.get(),
                query.health.get(),
                query.tag.get(),
                query.group.get(),
                query.sort.get(),
                query.descending.get(),
                query.page.get(),
                live.get(),
            )
        },
        |(search, health, tag, group, sort, descending, page, _)| {
            fleet(
                search,
                health.map(|h| h.slug().to_owned()).unwrap_or_default(),
                tag,
                group,
                sort.as_str().to_owned(),
                descending,
                page,
            )
        },
    );
    follow_events(live, None);

    let on_search = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        typed.set(value.clone());
        set_timeout(
            move || {
                if typed.get_untracked() == value {
                    query.page.set(0);
                    query.search.set(value);
                }
            },
            SEARCH_PAUSE,
        );
    };

    view! {
        <PageHeader title="Fleet" subtitle="Every firewall of this organisation, by health. Live."/>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || data.get().map(|result| match result {
                Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                Ok(page) if page.counts.all == 0 => view! {
                    <section class="card empty-state">
                        <h2>"No firewalls yet"</h2>
                        <p>"Register a pfSense firewall once; Mudmap then monitors and changes it over SSH."</p>
                        <a class="btn btn-primary" href="/devices">"Go to Devices"</a>
                    </section>
                }.into_any(),
                Ok(page) => view! { <Summary page=page.clone() query/> <FleetTable page query on_search typed/> }.into_any(),
            })}
        </Transition>
    }
}

/// Counts by health; each card filters the table (pressed again, it clears the filter).
#[component]
fn Summary(page: FleetPage, query: Query) -> impl IntoView {
    view! {
        <section class="summary" aria-label="Devices by state">
            {Health::ALL
                .into_iter()
                // Transient states only when some device is in them.
                .filter(|h| !matches!(h, Health::Pending | Health::Rebooting | Health::NoAccess) || page.counts.of(*h) > 0)
                .map(|h| {
                    let pressed = move || query.health.get() == Some(h);
                    view! {
                        <button
                            type="button"
                            class="summary-card"
                            data-testid=format!("count-{}", h.slug())
                            aria-pressed=move || pressed().to_string()
                            on:click=move |_| {
                                query.page.set(0);
                                query.health.set(if pressed() { None } else { Some(h) });
                            }
                        >
                            <StateBadge state=h/>
                            <span class="summary-count">{page.counts.of(h)}</span>
                        </button>
                    }
                })
                .collect_view()}
        </section>
    }
}

#[component]
fn FleetTable(
    page: FleetPage,
    query: Query,
    on_search: impl Fn(leptos::ev::Event) + 'static,
    typed: RwSignal<String>,
) -> impl IntoView {
    let first = u64::from(page.page) * u64::from(page.per_page);
    let shown = page.rows.len() as u64;
    let range = if shown == 0 {
        format!("No devices match (of {})", page.counts.all)
    } else {
        format!("{}–{} of {}", first + 1, first + shown, page.matching)
    };
    let has_next = first + shown < page.matching;
    let has_prev = page.page > 0;
    let now_ms = page.now_ms;
    view! {
        <section class="card">
            <div class="toolbar">
                <label class="toolbar-search">
                    <span class="visually-hidden">"Search devices"</span>
                    <input type="search" placeholder="Search name, host or tag" prop:value=move || typed.get()
                        on:input=on_search aria-label="Search devices"/>
                </label>
                <label>
                    <span class="visually-hidden">"Tag"</span>
                    <select aria-label="Filter by tag" on:change=move |ev| {
                        query.page.set(0);
                        query.tag.set(event_target_value(&ev));
                    }>
                        <option value="" selected=move || query.tag.get().is_empty()>"All tags"</option>
                        {page.tags.iter().map(|t| {
                            let value = t.clone();
                            let selected = t.clone();
                            view! { <option value=value selected=move || query.tag.get() == selected>{t.clone()}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label>
                    <span class="visually-hidden">"Group"</span>
                    <select aria-label="Filter by group" on:change=move |ev| {
                        query.page.set(0);
                        query.group.set(event_target_value(&ev));
                    }>
                        <option value="" selected=move || query.group.get().is_empty()>"All groups"</option>
                        {page.groups.iter().map(|g| {
                            let value = g.id.clone();
                            let selected = g.id.clone();
                            view! { <option value=value selected=move || query.group.get() == selected>{format!("{} ({})", g.name, g.devices)}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <a class="btn btn-ghost" href="/groups">"Groups…"</a>
                <span class="toolbar-range" role="status">{range}</span>
            </div>
            <div class="table-wrap">
                <table class="table" aria-label="Fleet">
                    <thead>
                        <tr>{COLUMNS.into_iter().map(|(key, label)| view! { <SortHeader key label query/> }).collect_view()}</tr>
                    </thead>
                    <tbody>
                        {page.rows.into_iter().map(|row| view! { <FleetRowView row now_ms/> }).collect_view()}
                    </tbody>
                </table>
            </div>
            <div class="pager">
                <button type="button" class="btn" disabled=!has_prev on:click=move |_| query.page.update(|p| *p = p.saturating_sub(1))>"Previous"</button>
                <button type="button" class="btn" disabled=!has_next on:click=move |_| query.page.update(|p| *p += 1)>"Next"</button>
            </div>
        </section>
    }
}

#[component]
fn SortHeader(key: SortKey, label: &'static str, query: Query) -> impl IntoView {
    let aria = move || {
        if query.sort.get() != key {
            "none"
        } else if query.descending.get() {
            "descending"
        } else {
            "ascending"
        }
    };
    view! {
        <th scope="col" aria-sort=aria>
            <button type="button" class="th-sort" on:click=move |_| {
                if query.sort.get_untracked() == key {
                    query.descending.update(|d| *d = !*d);
                } else {
                    query.sort.set(key);
                    query.descending.set(false);
                }
                query.page.set(0);
            }>
                {label}
                <span aria-hidden="true">{move || match aria() { "ascending" => " ▲", "descending" => " ▼", _ => "" }}</span>
            </button>
        </th>
    }
}

#[component]
fn FleetRowView(row: FleetRow, now_ms: i64) -> impl IntoView {
    let percent = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.0}%"));
    let gateways = match (row.gateways_up, row.gateways_total) {
        (Some(up), Some(total)) => format!("{up}/{total} up"),
        _ => "—".to_owned(),
    };
    let last_seen = row
        .last_seen_ms
        .map_or_else(|| "never".to_owned(), |at| ago(now_ms - at));
    let title = (!row.reason.is_empty()).then(|| row.reason.clone());
    view! {
        <tr data-testid="fleet-row" data-device=row.id.clone()>
            <td>
                <a href=format!("/devices/{}", row.id)>{row.name.clone()}</a>
                {row.drift_since_ms.map(|since| view! {
                    <span class="badge badge-drift" data-testid="drift-mark"
                        title=format!("Configuration changed outside Mudmap, first seen {}", utc_datetime(since))>
                        "Changed outside Mudmap"
                    </span>
                })}
            </td>
            <td class="mono">{row.host.clone()}</td>
            <td>{row.pfsense.clone().unwrap_or_else(|| "—".to_owned())}</td>
            <td>
                <StateBadge state=row.health/>
                {title.map(|t| view! { <span class="row-reason">{t}</span> })}
            </td>
            <td>{last_seen}</td>
            <td>{row.uptime_secs.map_or_else(|| "—".to_owned(), |s| uptime(u64::try_from(s).unwrap_or(0)))}</td>
            <td>{percent(row.cpu_pct)}</td>
            <td>{percent(row.mem_pct)}</td>
            <td>{gateways}</td>
            <td>{row.agent_version.clone().unwrap_or_else(|| "—".to_owned())}</td>
        </tr>
    }
}
