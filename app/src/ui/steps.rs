//! Progress steps for multi-step work (device activation, rollouts): each step says what it is,
//! where it stands, and — when it failed — why.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    Pending,
    Active,
    Done,
    Failed,
    Skipped,
    /// Done, then reverted because a later step failed.
    Undone,
}

impl StepStatus {
    fn slug(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Active => "active",
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Undone => "undone",
        }
    }

    /// Spoken status, for screen readers (the marker is decorative).
    fn spoken(self) -> &'static str {
        match self {
            StepStatus::Pending => "not started",
            StepStatus::Active => "in progress",
            StepStatus::Done => "done",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Undone => "undone again",
        }
    }

    fn marker(self) -> &'static str {
        match self {
            StepStatus::Pending => "○",
            StepStatus::Active => "◐",
            StepStatus::Done => "✓",
            StepStatus::Failed => "✕",
            StepStatus::Skipped => "–",
            StepStatus::Undone => "↺",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub label: String,
    pub status: StepStatus,
    pub detail: Option<String>,
}

impl Step {
    pub fn new(label: impl Into<String>, status: StepStatus) -> Self {
        Self {
            label: label.into(),
            status,
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

#[component]
pub fn ProgressSteps(
    #[prop(into)] label: String,
    #[prop(into)] steps: Signal<Vec<Step>>,
) -> impl IntoView {
    view! {
        <ol class="steps" aria-label=label>
            {move || {
                steps
                    .get()
                    .into_iter()
                    .map(|step| {
                        let status = step.status;
                        view! {
                            <li
                                class=format!("step step-{}", status.slug())
                                aria-current=(status == StepStatus::Active).then_some("step")
                            >
                                <span class="step-marker" aria-hidden="true">{status.marker()}</span>
                                <span class="step-text">
                                    <span class="step-label">{step.label}</span>
                                    <span class="visually-hidden">{format!(" ({})", status.spoken())}</span>
                                    {step.detail.map(|d| view! { <span class="step-detail">{d}</span> })}
                                </span>
                            </li>
                        }
                    })
                    .collect_view()
            }}
        </ol>
    }
}
