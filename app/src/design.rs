//! `/design`: the design system on one page — every component in each of its states. It is the
//! reference for new pages and the surface the browser tests use to check keyboard access.

use leptos::prelude::*;

use crate::ui::page::PageHeader;

use crate::ui::badge::{Health, StateBadge};
use crate::ui::dialog::ConfirmDialog;
use crate::ui::field::TextField;
use crate::ui::steps::{ProgressSteps, Step, StepStatus};
use crate::ui::tabs::{TabItem, TabPanel, Tabs};
use crate::ui::toast::use_toasts;

#[component]
pub fn DesignPage() -> impl IntoView {
    view! {
        <PageHeader title="Design system" subtitle="The building blocks every Mudmap page uses."/>
        <Buttons/>
        <Badges/>
        <Form/>
        <Table/>
        <Feedback/>
        <TabsDemo/>
        <StepsDemo/>
    }
}

#[component]
fn Buttons() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="buttons-heading">
            <h2 id="buttons-heading">"Buttons"</h2>
            <div class="row">
                <button type="button" class="btn btn-primary">"Primary"</button>
                <button type="button" class="btn">"Secondary"</button>
                <button type="button" class="btn btn-danger">"Delete"</button>
                <button type="button" class="btn btn-ghost">"Ghost"</button>
                <button type="button" class="btn" disabled=true>"Disabled"</button>
            </div>
        </section>
    }
}

#[component]
fn Badges() -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="badges-heading">
            <h2 id="badges-heading">"State badges"</h2>
            <div class="row">
                {Health::ALL.into_iter().map(|h| view! { <StateBadge state=h/> }).collect_view()}
            </div>
        </section>
    }
}

#[component]
fn Form() -> impl IntoView {
    let name = RwSignal::new(String::new());
    let host = RwSignal::new(String::new());
    let port = RwSignal::new("22".to_owned());
    let (submitted, set_submitted) = signal(false);
    let name_error = Signal::derive(move || {
        (submitted.get() && name.get().trim().is_empty())
            .then(|| "Enter a name for the device.".to_owned())
    });
    let host_error = Signal::derive(move || {
        (submitted.get() && host.get().trim().is_empty())
            .then(|| "Enter an IPv4 or IPv6 address or a DNS name.".to_owned())
    });
    let port_error = Signal::derive(move || {
        let ok = port.get().trim().parse::<u16>().is_ok_and(|p| p > 0);
        (submitted.get() && !ok).then(|| "Port must be a number from 1 to 65535.".to_owned())
    });
    let toasts = use_toasts();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        set_submitted.set(true);
        if name_error.get_untracked().is_none()
            && host_error.get_untracked().is_none()
            && port_error.get_untracked().is_none()
        {
            toasts.success(format!("Form is valid: {}", name.get_untracked().trim()));
        }
    };
    view! {
        <section class="card" aria-labelledby="form-heading">
            <h2 id="form-heading">"Form fields"</h2>
            <form class="form" novalidate=true on:submit=on_submit>
                <TextField label="Name" name="demo-name" value=name error=name_error required=true
                    hint="Shown in the fleet table, e.g. branch-office-fw."/>
                <TextField label="Host" name="demo-host" value=host error=host_error required=true
                    placeholder="192.0.2.1 or fw.example.com"/>
                <TextField label="SSH port" name="demo-port" value=port error=port_error input_type="number"/>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary">"Validate"</button>
                </div>
            </form>
        </section>
    }
}

#[component]
fn Table() -> impl IntoView {
    let rows = [
        ("branch-01", "198.51.100.10", "2.7.2 CE", Health::Online),
        ("branch-02", "198.51.100.11", "24.03 Plus", Health::Degraded),
        ("hq-edge", "2001:db8::1", "2.6.0 CE", Health::Offline),
    ];
    view! {
        <section class="card" aria-labelledby="table-heading">
            <h2 id="table-heading">"Table"</h2>
            <div class="table-wrap">
                <table class="table">
                    <caption class="visually-hidden">"Example devices"</caption>
                    <thead>
                        <tr>
                            <th scope="col" aria-sort="ascending">"Name"</th>
                            <th scope="col">"Host"</th>
                            <th scope="col">"Version"</th>
                            <th scope="col">"State"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {rows.into_iter().map(|(name, host, version, health)| view! {
                            <tr>
                                <td>{name}</td>
                                <td class="mono">{host}</td>
                                <td>{version}</td>
                                <td><StateBadge state=health/></td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </section>
    }
}

#[component]
fn Feedback() -> impl IntoView {
    let toasts = use_toasts();
    let open = RwSignal::new(false);
    let (deleted, set_deleted) = signal(0u32);
    view! {
        <section class="card" aria-labelledby="feedback-heading">
            <h2 id="feedback-heading">"Toasts and confirmation"</h2>
            <div class="row">
                <button type="button" class="btn" on:click=move |_| toasts.success("Alias saved.")>
                    "Show a toast"
                </button>
                <button type="button" class="btn" on:click=move |_| toasts.error("Could not reach fw-1: timed out after 10 s.")>
                    "Show an error"
                </button>
                <button type="button" class="btn btn-danger" on:click=move |_| open.set(true)>
                    "Delete example"
                </button>
                <span class="muted" data-testid="deleted-count">
                    {move || format!("Deleted: {}", deleted.get())}
                </span>
            </div>
            <ConfirmDialog
                open
                id="confirm-delete"
                title="Delete example device?"
                confirm_label="Delete"
                danger=true
                on_confirm=Callback::new(move |_| {
                    set_deleted.update(|n| *n += 1);
                    toasts.success("Example deleted.");
                })
            >
                <p>"This removes the example. Nothing real is deleted."</p>
            </ConfirmDialog>
        </section>
    }
}

#[component]
fn TabsDemo() -> impl IntoView {
    let active = RwSignal::new("system");
    let items = vec![
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
    ];
    view! {
        <section class="card" aria-labelledby="tabs-heading">
            <h2 id="tabs-heading">"Tabs"</h2>
            <Tabs label="Device sections" items active/>
            <TabPanel id="system" active><p>"Hostname, version, CPU and memory."</p></TabPanel>
            <TabPanel id="interfaces" active><p>"Interfaces with addresses and traffic."</p></TabPanel>
            <TabPanel id="firewall" active><p>"Rules and aliases."</p></TabPanel>
        </section>
    }
}

#[component]
fn StepsDemo() -> impl IntoView {
    let steps = vec![
        Step::new("Connect", StepStatus::Done)
            .with_detail("SSH-2.0-OpenSSH_9.7 at 198.51.100.10:22"),
        Step::new("Confirm host key", StepStatus::Done),
        Step::new("Detect pfSense", StepStatus::Active),
        Step::new("Add Mudmap's key to the admin account", StepStatus::Pending),
        Step::new("Install agent", StepStatus::Failed).with_detail("Disk full on /var"),
    ];
    view! {
        <section class="card" aria-labelledby="steps-heading">
            <h2 id="steps-heading">"Progress steps"</h2>
            <ProgressSteps label="Activation progress" steps=Signal::stored(steps)/>
        </section>
    }
}
