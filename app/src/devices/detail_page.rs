//! `/devices/:id`: one firewall, in pfSense's own tabs — System | Interfaces | Firewall | Services |
//! Status | Diagnostics. What the monitor stored is shown as it came; an offline device shows its
//! last known data with its age, never an error page. Tabs that later work fills say so.

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::detail::{
    acknowledge_drift, control_service, fetch_device_detail, DeviceDetail, DriftMark, Sample,
};
use super::history_tab::{HistoryState, HistoryTab};
use super::power::{PowerPanel, PowerState};
use super::status::{Service, Status};
use super::status_tab::{StatusTab, TablesState};
use crate::auth::use_role;
use crate::roles::Role;
use crate::ui::badge::{Health, StateBadge};
use crate::ui::dialog::ConfirmDialog;
use crate::ui::format::{ago, bytes, uptime, utc_datetime};
use crate::ui::live::follow_events;
use crate::ui::page::PageHeader;
use crate::ui::tabs::{TabItem, TabPanel, Tabs};
use crate::ui::toast::use_toasts;

const TABS: [TabItem; 7] = [
    TabItem {
        id: "system",
        label: "System",
    },
    TabItem {
        id: "interfaces",
        label: "Interfaces",
    },
    TabItem {
        id: "firewall",
        label: "Firewall",
    },
    TabItem {
        id: "services",
        label: "Services",
    },
    TabItem {
        id: "status",
        label: "Status",
    },
    TabItem {
        id: "diagnostics",
        label: "Diagnostics",
    },
    TabItem {
        id: "history",
        label: "History",
    },
];

#[component]
pub fn DeviceDetailPage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    // Live: re-read when this device's health changes (a reboot shows "Rebooting", then back).
    let live = RwSignal::new(0u32);
    follow_events(live, params.read_untracked().get("id"));
    let detail = Resource::new(
        move || (id(), live.get()),
        |(id, _)| fetch_device_detail(id),
    );
    // Kept across live re-reads: the open tab (`?tab=` opens one: search results link to theirs),
    // the Status tab's tables, a half-typed confirmation.
    let asked_tab = use_query_map()
        .read_untracked()
        .get("tab")
        .unwrap_or_default();
    let active = RwSignal::new(
        TABS.iter()
            .find(|t| t.id == asked_tab)
            .map_or("system", |t| t.id),
    );
    let tables = TablesState::new(Signal::derive(id));
    let history = HistoryState::new(Signal::derive(id));
    let power = PowerState::new();
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || detail.get().map(|result| match result {
                Err(e) => view! {
                    <PageHeader title="Device" subtitle=""/>
                    <p class="form-error" role="alert">{e.to_string()}</p>
                }.into_any(),
                Ok(detail) => view! { <Detail detail active tables history power/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn Detail(
    detail: DeviceDetail,
    active: RwSignal<&'static str>,
    tables: TablesState,
    history: HistoryState,
    power: PowerState,
) -> impl IntoView {
    let subtitle = format!("{} port {}", detail.device.host, detail.device.port);
    let age = detail.last_seen_ms.map(|at| ago(detail.now_ms - at));
    let stale = matches!(
        detail.health,
        Health::Offline | Health::Rebooting | Health::NoAccess
    );
    let freshness = match (&age, stale) {
        (Some(age), true) => format!("Last known data from {age}."),
        (Some(age), false) => format!("Last polled {age}."),
        (None, _) => "Not polled yet.".to_owned(),
    };
    // Each panel's children own their data.
    let (for_system, for_interfaces) = (detail.history.clone(), detail.history.clone());
    let (status_interfaces, status_services) = (detail.status.clone(), detail.status.clone());
    let name = detail.device.name.clone();
    let (health, reason) = (detail.health, detail.reason.clone());
    let device_id = detail.device.id.clone();
    let history_device = detail.device.id.clone();
    let managed = detail.device.state == super::DeviceState::Active;
    let for_power = detail.device.clone();
    let (drift, drift_device) = (detail.drift.clone(), detail.device.id.clone());
    view! {
        <PageHeader title=name subtitle=subtitle/>
        <p class="row" data-testid="device-health">
            <StateBadge state=health/>
            {(!reason.is_empty()).then(|| view! { <span class="row-reason">{reason.clone()}</span> })}
            <span class=if stale { "stale" } else { "hint" } data-testid="freshness">{freshness}</span>
        </p>
        {drift.map(|mark| view! { <DriftNotice mark device_id=drift_device active history/> })}
        <Tabs label="Device sections" items=TABS.to_vec() active/>
        <TabPanel id="system" active>
            <SystemTab detail history=for_system/>
        </TabPanel>
        <TabPanel id="interfaces" active>
            <InterfacesTab status=status_interfaces history=for_interfaces/>
        </TabPanel>
        <TabPanel id="firewall" active>
            <p class="hint">"Rules, aliases and NAT arrive with change sets: previewed, backed up, applied per device and confirmed."</p>
        </TabPanel>
        <TabPanel id="services" active>
            <ServicesTab status=status_services device_id managed/>
        </TabPanel>
        <TabPanel id="status" active>
            <StatusTab state=tables managed shown=Signal::derive(move || active.get() == "status")/>
        </TabPanel>
        <TabPanel id="diagnostics" active>
            <PowerPanel device=for_power health state=power/>
            <p class="hint">"Ping, traceroute and the state table arrive with the next agent methods."</p>
        </TabPanel>
        <TabPanel id="history" active>
            <HistoryTab state=history device_id=history_device managed shown=Signal::derive(move || active.get() == "history")/>
        </TabPanel>
    }
}

/// "Changed outside Mudmap": who changed what (pfSense's record), what changed (the History
/// tab's comparison of what Mudmap last knew with the newest revision), and Acknowledge
/// (operators and above; audited).
#[component]
fn DriftNotice(
    mark: DriftMark,
    device_id: String,
    active: RwSignal<&'static str>,
    history: HistoryState,
) -> impl IntoView {
    let role = use_role();
    let can_acknowledge = Signal::derive(move || role.get().is_some_and(Role::can_operate));
    let toasts = use_toasts();
    let gone = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let by = if mark.pf_username.is_empty() {
        "someone".to_owned()
    } else {
        mark.pf_username.clone()
    };
    let text = format!(
        "The configuration was changed by {by}, first seen {}{}.",
        utc_datetime(mark.since_ms),
        if mark.seen_ms > mark.since_ms {
            format!(", last on {}", utc_datetime(mark.seen_ms))
        } else {
            String::new()
        }
    );
    let note = (!mark.pf_description.is_empty())
        .then(|| format!("pfSense's note: {}", mark.pf_description));
    let (base, newest) = (mark.base_revision_id.clone(), mark.revision_id.clone());
    let show = move |_| {
        history.compare(base.clone(), newest.clone());
        active.set("history");
    };
    let device = StoredValue::new(device_id);
    let acknowledge = move |_| {
        busy.set(true);
        let id = device.get_value();
        leptos::task::spawn_local(async move {
            match acknowledge_drift(id).await {
                Ok(()) => {
                    gone.set(true);
                    toasts.success("Acknowledged: the mark is cleared. The backups stay.");
                }
                Err(e) => toasts.error(e.to_string()),
            }
            busy.set(false);
        });
    };
    view! {
        <Show when=move || !gone.get()>
            <section class="drift-notice" role="status" aria-label="Changed outside Mudmap">
                <h2>"Changed outside Mudmap"</h2>
                <p>{text.clone()}</p>
                {note.clone().map(|n| view! { <p class="hint">{n}</p> })}
                <p class="row">
                    <button type="button" class="btn btn-ghost" on:click=show.clone()>"Show what changed"</button>
                    {move || can_acknowledge.get().then(|| view! {
                        <button type="button" class="btn" disabled=move || busy.get() on:click=acknowledge>"Acknowledge"</button>
                    })}
                </p>
            </section>
        </Show>
    }
}

/// A line above a table whose section the firewall could not read (the table is empty then).
fn unread_note(status: &Status, section: &str) -> Option<impl IntoView> {
    status.error(section).map(|why| {
        let text = format!("The firewall could not read its {section}: {why}");
        view! { <p class="hint" role="status">{text}</p> }
    })
}

/// A figure the firewall could not read: "not read", with the firewall's reason.
fn unread(status: &Status, section: &str) -> String {
    match status.error(section) {
        Some(why) => format!("not read: {why}"),
        None => "not reported".to_owned(),
    }
}

#[component]
fn SystemTab(detail: DeviceDetail, history: Vec<Sample>) -> impl IntoView {
    let status = detail.status.clone();
    let device = detail.device;
    let text = |f: fn(&Status) -> String| {
        status
            .as_ref()
            .map(f)
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| "—".to_owned())
    };
    let facts = vec![
        ("Hostname", text(|s| s.hostname.clone())),
        ("Platform", text(|s| s.platform.clone())),
        ("DNS servers", text(|s| s.dns_servers.join(", "))),
        (
            "pfSense",
            device.pfsense.clone().unwrap_or_else(|| "—".to_owned()),
        ),
        (
            "Agent",
            device
                .agent_version
                .clone()
                .unwrap_or_else(|| "—".to_owned()),
        ),
        (
            "Host key",
            device.fingerprint.clone().unwrap_or_else(|| "—".to_owned()),
        ),
        (
            "Uptime",
            status.as_ref().map_or_else(
                || "—".to_owned(),
                |s| match s.uptime_secs {
                    Some(secs) => uptime(secs),
                    None => unread(s, "uptime"),
                },
            ),
        ),
        (
            "CPU",
            status.as_ref().map_or_else(
                || "—".to_owned(),
                |s| match (s.cpu.usage_pct, s.cpu.cores) {
                    (Some(pct), Some(cores)) => format!(
                        "{pct:.0}% of {cores} cores, load {:.2} {:.2} {:.2}",
                        s.cpu.load[0], s.cpu.load[1], s.cpu.load[2]
                    ),
                    _ => format!(
                        "{}; load {:.2} {:.2} {:.2}",
                        unread(s, "cpu"),
                        s.cpu.load[0],
                        s.cpu.load[1],
                        s.cpu.load[2]
                    ),
                },
            ),
        ),
        (
            "Memory",
            status.as_ref().map_or_else(
                || "—".to_owned(),
                |s| match &s.memory {
                    Some(m) => format!("{} of {}", bytes(m.used_bytes), bytes(m.total_bytes)),
                    None => unread(s, "memory"),
                },
            ),
        ),
        (
            "Disks",
            status.as_ref().map_or_else(
                || "—".to_owned(),
                |s| {
                    if let Some(why) = s.error("disks") {
                        return format!("not read: {why}");
                    }
                    s.disks
                        .iter()
                        .map(|d| {
                            format!(
                                "{} {} of {}",
                                d.mount,
                                bytes(d.used_bytes),
                                bytes(d.total_bytes)
                            )
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                },
            ),
        ),
    ];
    view! {
        <dl class="facts">
            {facts.into_iter().map(|(k, v)| view! { <dt>{k}</dt><dd>{v}</dd> }).collect_view()}
        </dl>
        <div class="charts">
            <Sparkline label="CPU %" values=history.iter().map(|s| s.cpu_pct).collect() max=Some(100.0)/>
            <Sparkline label="Memory %" values=history.iter().map(|s| s.mem_pct).collect() max=Some(100.0)/>
            <Sparkline label="Disk %" values=history.iter().map(|s| s.disk_pct).collect() max=Some(100.0)/>
            <Sparkline label="Gateway RTT ms" values=history.iter().map(|s| s.rtt_ms).collect() max=None/>
        </div>
    }
}

#[component]
fn InterfacesTab(status: Option<Status>, history: Vec<Sample>) -> impl IntoView {
    let Some(status) = status else {
        return view! { <p class="hint">"Not polled yet."</p> }.into_any();
    };
    let interfaces_note = unread_note(&status, "interfaces");
    let gateways_note = unread_note(&status, "gateways");
    view! {
        {interfaces_note}
        <div class="table-wrap">
            <table class="table" aria-label="Interfaces">
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Description"</th><th scope="col">"Status"</th>
                    <th scope="col">"IPv4"</th><th scope="col">"IPv6"</th><th scope="col">"Media"</th>
                    <th scope="col">"In"</th><th scope="col">"Out"</th>
                </tr></thead>
                <tbody>
                    {status.interfaces.into_iter().map(|i| view! {
                        <tr>
                            <td>{format!("{} ({})", i.name, i.device)}</td>
                            <td>{i.description}</td>
                            <td>{i.status}</td>
                            <td class="mono">{i.ipv4.unwrap_or_else(|| "—".to_owned())}</td>
                            <td class="mono">{i.ipv6.unwrap_or_else(|| "—".to_owned())}</td>
                            <td>{i.media}</td>
                            <td>{bytes(i.rx_bytes)}</td>
                            <td>{bytes(i.tx_bytes)}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <div class="charts">
            <Sparkline label="Traffic in, bit/s" values=history.iter().map(|s| s.rx_bps).collect() max=None/>
            <Sparkline label="Traffic out, bit/s" values=history.iter().map(|s| s.tx_bps).collect() max=None/>
        </div>
        <h3>"Gateways"</h3>
        {gateways_note}
        <div class="table-wrap">
            <table class="table" aria-label="Gateways">
                <thead><tr>
                    <th scope="col">"Name"</th><th scope="col">"Address"</th><th scope="col">"Monitor"</th>
                    <th scope="col">"RTT"</th><th scope="col">"RTTsd"</th><th scope="col">"Loss"</th><th scope="col">"Status"</th>
                </tr></thead>
                <tbody>
                    {status.gateways.into_iter().map(|g| view! {
                        <tr>
                            <td>{g.name}</td>
                            <td class="mono">{g.address}</td>
                            <td class="mono">{g.monitor}</td>
                            <td>{format!("{:.1} ms", g.rtt_ms)}</td>
                            <td>{format!("{:.1} ms", g.rttsd_ms)}</td>
                            <td>{format!("{:.0}%", g.loss_pct)}</td>
                            <td>{g.status}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
        <div class="charts">
            <Sparkline label="Gateway loss %" values=history.iter().map(|s| s.loss_pct).collect() max=Some(100.0)/>
        </div>
    }
    .into_any()
}

/// The services as the firewall last reported them; operators and above start, stop (after a
/// confirmation) and restart them, and see the firewall's answer at once.
#[component]
fn ServicesTab(status: Option<Status>, device_id: String, managed: bool) -> impl IntoView {
    let Some(status) = status else {
        return view! { <p class="hint">"Not polled yet."</p> }.into_any();
    };
    let services_note = unread_note(&status, "services");
    let role = use_role();
    let can_act = Signal::derive(move || managed && role.get().is_some_and(Role::can_operate));
    let toasts = use_toasts();
    let services = RwSignal::new(status.services);
    let busy = RwSignal::new(None::<String>);
    let stopping = RwSignal::new(None::<String>);
    let stop_open = RwSignal::new(false);
    let device = StoredValue::new(device_id);
    let act = move |name: String, action: &'static str| {
        busy.set(Some(name.clone()));
        let id = device.get_value();
        leptos::task::spawn_local(async move {
            match control_service(id, name.clone(), action.to_owned()).await {
                Ok(service) => {
                    // The firewall reads the state again after acting: say when it did not take.
                    if action != "stop" && service.status != "running" {
                        toasts.error(format!(
                            "{} did not start: the firewall reports it {}.",
                            service.name, service.status
                        ));
                    } else {
                        toasts.success(format!("{}: {}.", service.name, service.status));
                    }
                    services.update(|list| {
                        if let Some(entry) = list.iter_mut().find(|s| s.name == service.name) {
                            *entry = service;
                        }
                    });
                }
                Err(e) => toasts.error(e.to_string()),
            }
            busy.set(None);
        });
    };
    view! {
        {services_note}
        <div class="table-wrap">
            <table class="table" aria-label="Services">
                <thead><tr>
                    <th scope="col">"Service"</th><th scope="col">"Description"</th><th scope="col">"Status"</th>
                    <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr></thead>
                <tbody>
                    <For each=move || services.get() key=|s: &Service| (s.name.clone(), s.status.clone()) let:service>
                        <ServiceRow service can_act busy
                            on_action=Callback::new(move |(name, action): (String, &'static str)| {
                                if action == "stop" {
                                    stopping.set(Some(name));
                                    stop_open.set(true);
                                } else {
                                    act(name, action);
                                }
                            })/>
                    </For>
                </tbody>
            </table>
        </div>
        <ConfirmDialog open=stop_open id="stop-service-dialog" title="Stop this service?" confirm_label="Stop" danger=true
            on_confirm=Callback::new(move |()| {
                if let Some(name) = stopping.get_untracked() {
                    act(name, "stop");
                }
            })>
            <p>{move || stopping.get().map(|n| format!("{n} stops on the firewall until it is started again or the firewall reboots."))}</p>
        </ConfirmDialog>
    }
    .into_any()
}

#[component]
fn ServiceRow(
    service: Service,
    can_act: Signal<bool>,
    busy: RwSignal<Option<String>>,
    on_action: Callback<(String, &'static str)>,
) -> impl IntoView {
    let running = service.status == "running";
    let name = service.name.clone();
    let actions = move || {
        if !can_act.get() {
            return None;
        }
        let busy_now = busy.get().as_deref() == Some(name.as_str());
        let button = |label: &'static str, action: &'static str| {
            let name = name.clone();
            view! {
                <button type="button" class="btn btn-ghost" disabled=busy_now
                    on:click=move |_| on_action.run((name.clone(), action))>{label}</button>
            }
        };
        Some(if running {
            (button("Restart", "restart"), button("Stop", "stop")).into_any()
        } else {
            button("Start", "start").into_any()
        })
    };
    view! {
        <tr data-testid="service-row">
            <td>{service.name.clone()}</td>
            <td>{service.description.clone()}</td>
            <td>{service.status.clone()}</td>
            <td class="row">{actions}</td>
        </tr>
    }
}

/// A small line chart of `values` (oldest first; gaps where a value is missing), as inline SVG
/// with the latest value as text, so the figure is readable without the picture.
#[component]
fn Sparkline(label: &'static str, values: Vec<Option<f64>>, max: Option<f64>) -> impl IntoView {
    const W: f64 = 240.0;
    const H: f64 = 48.0;
    let known: Vec<f64> = values.iter().flatten().copied().collect();
    let top = max
        .unwrap_or_else(|| known.iter().copied().fold(0.0, f64::max))
        .max(f64::EPSILON);
    let step = if values.len() > 1 {
        W / (values.len() - 1) as f64
    } else {
        W
    };
    let points: String = values
        .iter()
        .enumerate()
        .filter_map(|(i, v)| {
            v.map(|v| {
                format!(
                    "{:.1},{:.1}",
                    i as f64 * step,
                    H - (v / top).clamp(0.0, 1.0) * H
                )
            })
        })
        .collect::<Vec<_>>()
        .join(" ");
    let latest = known
        .last()
        .map_or_else(|| "no data yet".to_owned(), |v| format!("now {v:.1}"));
    view! {
        <figure class="sparkline">
            <figcaption>{label}" — "{latest}</figcaption>
            <svg viewBox=format!("0 0 {W} {H}") width="240" height="48" role="img" aria-label=format!("{label}, last 24 hours")>
                <polyline points=points fill="none" stroke="currentColor" stroke-width="1.5"/>
            </svg>
        </figure>
    }
}
