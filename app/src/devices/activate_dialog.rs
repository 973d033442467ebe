//! The activation dialog: read the host key (no credentials sent), let the person compare its
//! fingerprint and type the admin password, then follow the run's steps live until the device is
//! Active or the failure is explained (and undone on the firewall).

use std::time::Duration;

use leptos::prelude::*;

use super::activation::{
    activate, activation, probe_host_key, ActivationView, HostKeyProbe, Outcome, StepState,
};
use super::Device;
use crate::auth::pages::FormError;
use crate::ui::field::TextField;
use crate::ui::steps::{ProgressSteps, Step, StepStatus};

/// How often the browser asks for the run's progress.
const POLL_EVERY: Duration = Duration::from_millis(400);

/// Where the dialog is.
#[derive(Clone, PartialEq)]
enum Phase {
    Probing,
    ProbeFailed(String),
    Confirm(HostKeyProbe),
    /// The person said the fingerprint does not match.
    Rejected(HostKeyProbe),
    Running(String),
}

fn to_step(step: &super::activation::StepView) -> Step {
    let status = match step.state {
        StepState::Pending => StepStatus::Pending,
        StepState::Running => StepStatus::Active,
        StepState::Done => StepStatus::Done,
        StepState::Failed => StepStatus::Failed,
        StepState::Undone => StepStatus::Undone,
    };
    let step_view = Step::new(step.label.clone(), status);
    match &step.detail {
        Some(detail) => step_view.with_detail(detail.clone()),
        None => step_view,
    }
}

#[component]
pub fn ActivationDialog(
    /// The device to activate; `Some` opens the dialog.
    device: RwSignal<Option<Device>>,
    /// Called when a run ends (the list should reload).
    on_finished: Callback<()>,
) -> impl IntoView {
    let node = NodeRef::<leptos::html::Dialog>::new();
    let phase = RwSignal::new(Phase::Probing);
    let view_state = RwSignal::new(None::<ActivationView>);
    let username = RwSignal::new("admin".to_owned());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let starting = RwSignal::new(false);

    let probe = move |id: String| {
        phase.set(Phase::Probing);
        view_state.set(None);
        error.set(None);
        leptos::task::spawn_local(async move {
            match probe_host_key(id).await {
                Ok(found) => phase.set(Phase::Confirm(found)),
                Err(e) => phase.set(Phase::ProbeFailed(e.to_string())),
            }
        });
    };

    Effect::new(move |_| {
        let current = device.get();
        let Some(dialog) = node.get() else { return };
        match current {
            Some(d) if !dialog.open() => {
                username.set("admin".to_owned());
                password.set(String::new());
                let _ = dialog.show_modal();
                probe(d.id);
            }
            None if dialog.open() => dialog.close(),
            _ => {}
        }
    });

    // Follow a run until it ends.
    let follow = move |run: String| {
        leptos::task::spawn_local(async move {
            loop {
                match activation(run.clone()).await {
                    Ok(v) => {
                        let done = v.outcome != Outcome::Running;
                        view_state.set(Some(v));
                        if done {
                            on_finished.run(());
                            break;
                        }
                    }
                    Err(e) => {
                        error.set(Some(e.to_string()));
                        break;
                    }
                }
                if phase.get_untracked() != Phase::Running(run.clone()) {
                    break;
                }
                sleep(POLL_EVERY).await;
            }
        });
    };

    let start = move |found: HostKeyProbe| {
        if password.get_untracked().is_empty() {
            error.set(Some(
                "Enter the password. It is used once for this activation and never stored."
                    .to_owned(),
            ));
            return;
        }
        error.set(None);
        starting.set(true);
        let secret = password.get_untracked();
        // The field forgets it at once: nothing in the page keeps the password.
        password.set(String::new());
        let user = username.get_untracked();
        leptos::task::spawn_local(async move {
            let started = activate(found.device_id.clone(), user, secret, found.fingerprint).await;
            starting.set(false);
            match started {
                Ok(run) => {
                    phase.set(Phase::Running(run.clone()));
                    follow(run);
                }
                Err(e) => error.set(Some(e.to_string())),
            }
        });
    };

    let close = move || device.set(None);
    let title = move || {
        device
            .get()
            .map(|d| format!("Activate {}", d.name))
            .unwrap_or_default()
    };

    view! {
        <dialog
            id="activate-dialog"
            class="dialog dialog-wide"
            node_ref=node
            aria-labelledby="activate-dialog-title"
            on:close=move |_| device.set(None)
        >
            <h2 id="activate-dialog-title">{title}</h2>
            <div class="dialog-body">
                {move || match phase.get() {
                    Phase::Probing => view! {
                        <p role="status">"Connecting to read the firewall's host key… (no password is sent)"</p>
                    }.into_any(),
                    Phase::ProbeFailed(message) => view! {
                        <p class="form-error" role="alert">{message}</p>
                        <div class="dialog-actions">
                            <button type="button" class="btn" on:click=move |_| close()>"Close"</button>
                            <button type="button" class="btn btn-primary" on:click=move |_| {
                                if let Some(d) = device.get_untracked() { probe(d.id) }
                            }>"Try again"</button>
                        </div>
                    }.into_any(),
                    Phase::Rejected(found) => view! {
                        <p class="form-error" role="alert">
                            {format!("Activation stopped: you rejected the host key {}. Nothing was sent to the firewall. \
                                Check that {} is the right address; if the firewall was reinstalled, its new key is expected.",
                                found.fingerprint, found.address)}
                        </p>
                        <div class="dialog-actions">
                            <button type="button" class="btn" on:click=move |_| close()>"Close"</button>
                        </div>
                    }.into_any(),
                    Phase::Confirm(found) => view! {
                        <ConfirmStep found username password error starting
                            on_start=Callback::new(start)
                            on_reject=Callback::new(move |found| phase.set(Phase::Rejected(found)))
                            on_cancel=Callback::new(move |()| close())
                        />
                    }.into_any(),
                    Phase::Running(_) => view! {
                        <RunProgress view_state error
                            on_retry=Callback::new(move |()| {
                                if let Some(d) = device.get_untracked() { probe(d.id) }
                            })
                            on_close=Callback::new(move |()| close())
                        />
                    }.into_any(),
                }}
            </div>
        </dialog>
    }
}

/// The fingerprint to compare, the account and the password.
#[component]
fn ConfirmStep(
    found: HostKeyProbe,
    username: RwSignal<String>,
    password: RwSignal<String>,
    error: RwSignal<Option<String>>,
    starting: RwSignal<bool>,
    on_start: Callback<HostKeyProbe>,
    on_reject: Callback<HostKeyProbe>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let for_start = found.clone();
    let for_reject = found.clone();
    view! {
        <p>{format!("{} at {} presents this {} host key:", found.device_name, found.address, found.algorithm)}</p>
        <p class="fingerprint mono" data-testid="host-key-fingerprint">{found.fingerprint.clone()}</p>
        <p class="hint">
            "Compare it with the firewall's own: on its console or shell run "
            <code>"ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"</code>
            ". Continue only if they are the same; the key is then pinned and checked on every connection."
        </p>
        <form class="form" novalidate=true on:submit=move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            on_start.run(for_start.clone());
        }>
            <TextField label="Admin account" name="activate-username" value=username required=true autocomplete="off"/>
            <TextField label="Password" name="activate-password" value=password required=true input_type="password"
                autocomplete="off"
                hint="Used once for this activation, held in memory only, and never stored or logged."/>
            <FormError error=Signal::derive(move || error.get())/>
            <div class="dialog-actions">
                <button type="button" class="btn" on:click=move |_| on_cancel.run(())>"Cancel"</button>
                <button type="button" class="btn btn-danger" on:click=move |_| on_reject.run(for_reject.clone())>
                    "Fingerprint differs"
                </button>
                <button type="submit" class="btn btn-primary" disabled=move || starting.get()>
                    "Fingerprint matches — activate"
                </button>
            </div>
        </form>
    }
}

/// The live steps, then the outcome.
#[component]
fn RunProgress(
    view_state: RwSignal<Option<ActivationView>>,
    error: RwSignal<Option<String>>,
    on_retry: Callback<()>,
    on_close: Callback<()>,
) -> impl IntoView {
    let steps = Signal::derive(move || {
        view_state
            .get()
            .map(|v| v.steps.iter().map(to_step).collect())
            .unwrap_or_default()
    });
    let outcome = move || view_state.get().map(|v| v.outcome);
    view! {
        <ProgressSteps label="Activation steps" steps/>
        <FormError error=Signal::derive(move || error.get())/>
        {move || match outcome() {
            Some(Outcome::Active) => view! {
                <p class="form-success" role="status" data-testid="activation-outcome">
                    {view_state.get().map(|v| format!("{} is active: Mudmap now manages it with its own key.", v.device_name))}
                </p>
                <div class="dialog-actions">
                    <button type="button" class="btn btn-primary" on:click=move |_| on_close.run(())>"Done"</button>
                </div>
            }.into_any(),
            Some(Outcome::Failed) => view! {
                <div class="form-error" role="alert" data-testid="activation-outcome">
                    <p>{view_state.get().and_then(|v| v.error)}</p>
                    <p>{view_state.get().and_then(|v| v.cleanup)}</p>
                </div>
                <div class="dialog-actions">
                    <button type="button" class="btn" on:click=move |_| on_close.run(())>"Close"</button>
                    <button type="button" class="btn btn-primary" on:click=move |_| on_retry.run(())>"Start again"</button>
                </div>
            }.into_any(),
            _ => view! { <p role="status">"Working… each step ticks as it completes."</p> }.into_any(),
        }}
    }
}

/// Wait in the browser (a no-op wait on the server, where this never runs).
async fn sleep(duration: Duration) {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    set_timeout(
        move || {
            let _ = tx.send(());
        },
        duration,
    );
    let _ = rx.await;
}
