//! The device page's Status tab, as pfSense's Status > DHCP Leases, Diagnostics > ARP Table and
//! the installed packages: read live from the firewall when the tab is first opened (not polled),
//! with the time of reading and a refresh button. An offline device says so instead.

use leptos::prelude::*;

use super::detail::{fetch_status_tables, StatusTables};
use crate::error::AppError;
use crate::ui::format::clock;

/// The tab's data, owned by the device page so that its live re-renders (every health change of
/// the device) neither re-read the firewall nor lose what was read.
#[derive(Clone, Copy)]
pub struct TablesState {
    opened: RwSignal<bool>,
    refresh: RwSignal<u32>,
    tables: Resource<Option<Result<StatusTables, AppError>>>,
}

impl TablesState {
    pub fn new(device_id: Signal<String>) -> Self {
        let opened = RwSignal::new(false);
        let refresh = RwSignal::new(0u32);
        // A resource of both builds: on the server (tab closed) it resolves to None at once and
        // the browser hydrates the same; opening the tab asks the firewall.
        let tables = Resource::new(
            move || (device_id.get(), opened.get(), refresh.get()),
            |(id, wanted, _)| async move {
                if wanted {
                    Some(fetch_status_tables(id).await)
                } else {
                    None
                }
            },
        );
        Self {
            opened,
            refresh,
            tables,
        }
    }
}

#[component]
pub fn StatusTab(
    state: TablesState,
    /// Only an active device is asked.
    managed: bool,
    /// Whether the tab is showing (the tables are read the first time it is).
    shown: Signal<bool>,
) -> impl IntoView {
    if !managed {
        return view! { <p class="hint">"Activate the device to read its DHCP leases, ARP table and packages."</p> }
            .into_any();
    }
    let TablesState {
        opened,
        refresh,
        tables,
    } = state;
    Effect::new(move |_| {
        if shown.get() && !opened.get_untracked() {
            opened.set(true);
        }
    });
    view! {
        <Transition fallback=|| view! { <p>"Reading from the firewall…"</p> }>
            {move || match tables.get().flatten() {
                None => view! { <p class="hint">"Reading from the firewall…"</p> }.into_any(),
                Some(result) => match result {
                Err(e) => view! {
                    <p class="form-error" role="alert">{e.to_string()}</p>
                    <button type="button" class="btn" on:click=move |_| refresh.update(|n| *n += 1)>"Try again"</button>
                }.into_any(),
                Ok(t) => {
                    view! {
                        <p class="row hint">
                            <span data-testid="tables-read">{format!("Read from the firewall at {}.", clock(t.read_at_ms))}</span>
                            <button type="button" class="btn btn-ghost" on:click=move |_| refresh.update(|n| *n += 1)>"Refresh"</button>
                        </p>
                        <h3>"DHCP leases"</h3>
                        <div class="table-wrap">
                            <table class="table" aria-label="DHCP leases">
                                <thead><tr>
                                    <th scope="col">"IP address"</th><th scope="col">"MAC address"</th><th scope="col">"Hostname"</th>
                                    <th scope="col">"Interface"</th><th scope="col">"Type"</th><th scope="col">"State"</th><th scope="col">"Online"</th>
                                </tr></thead>
                                <tbody>
                                    {empty_row(t.leases.is_empty(), 7, "No leases.")}
                                    {t.leases.into_iter().map(|l| view! {
                                        <tr data-testid="lease-row">
                                            <td class="mono">{l.ip}</td>
                                            <td class="mono">{l.mac}</td>
                                            <td>{dash(l.hostname)}</td>
                                            <td>{dash(l.interface)}</td>
                                            <td>{l.kind}</td>
                                            <td>{l.state}</td>
                                            <td>{if l.online { "online" } else { "offline" }}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <h3>"ARP table"</h3>
                        <div class="table-wrap">
                            <table class="table" aria-label="ARP table">
                                <thead><tr>
                                    <th scope="col">"IP address"</th><th scope="col">"MAC address"</th><th scope="col">"Interface"</th>
                                    <th scope="col">"Hostname"</th><th scope="col">"Expires"</th>
                                </tr></thead>
                                <tbody>
                                    {empty_row(t.arp.is_empty(), 5, "No entries.")}
                                    {t.arp.into_iter().map(|a| view! {
                                        <tr data-testid="arp-row">
                                            <td class="mono">{a.ip}</td>
                                            <td class="mono">{a.mac}</td>
                                            <td>{a.interface}</td>
                                            <td>{dash(a.hostname)}</td>
                                            <td>{a.expires_secs.map_or_else(|| "permanent".to_owned(), |s| format!("in {s} s"))}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                        <h3>"Installed packages"</h3>
                        <div class="table-wrap">
                            <table class="table" aria-label="Installed packages">
                                <thead><tr>
                                    <th scope="col">"Package"</th><th scope="col">"Version"</th><th scope="col">"Description"</th>
                                </tr></thead>
                                <tbody>
                                    {empty_row(t.packages.is_empty(), 3, "No packages installed.")}
                                    {t.packages.into_iter().map(|p| view! {
                                        <tr data-testid="package-row">
                                            <td>{p.name}</td>
                                            <td class="mono">{p.version}</td>
                                            <td>{p.description}</td>
                                        </tr>
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </div>
                    }.into_any()
                }
            }}}
        </Transition>
    }
    .into_any()
}

fn dash(text: String) -> String {
    if text.is_empty() {
        "—".to_owned()
    } else {
        text
    }
}

fn empty_row(empty: bool, columns: u8, text: &'static str) -> Option<impl IntoView> {
    empty
        .then(|| view! { <tr><td colspan=columns.to_string() class="table-empty">{text}</td></tr> })
}
