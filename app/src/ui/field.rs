//! Form fields: a visible label, the input, an optional hint and an inline error that is tied to
//! the input with `aria-describedby` / `aria-invalid`, so screen readers and tests find both.

use leptos::prelude::*;

#[component]
pub fn TextField(
    /// Visible label; also the accessible name.
    #[prop(into)]
    label: String,
    /// Form field name; also the base of the element ids.
    #[prop(into)]
    name: String,
    value: RwSignal<String>,
    /// The inline error to show, if any.
    #[prop(into, default = Signal::stored(None))]
    error: Signal<Option<String>>,
    #[prop(into, optional)] hint: Option<String>,
    /// `text`, `password`, `email`, `number`…
    #[prop(default = "text")]
    input_type: &'static str,
    #[prop(optional)] required: bool,
    #[prop(into, optional)] placeholder: Option<String>,
    #[prop(into, optional)] autocomplete: Option<String>,
) -> impl IntoView {
    let id = format!("field-{name}");
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let has_hint = hint.is_some();
    let described_by = {
        let (hint_id, error_id) = (hint_id.clone(), error_id.clone());
        move || {
            let mut ids = Vec::new();
            if has_hint {
                ids.push(hint_id.clone());
            }
            if error.get().is_some() {
                ids.push(error_id.clone());
            }
            (!ids.is_empty()).then(|| ids.join(" "))
        }
    };
    view! {
        <div class="field" class:field-invalid=move || error.get().is_some()>
            <label for=id.clone()>
                {label}
                {required.then(|| view! { <span class="required" aria-hidden="true">" *"</span> })}
            </label>
            <input
                id=id
                name=name
                type=input_type
                required=required
                placeholder=placeholder
                autocomplete=autocomplete
                aria-invalid=move || error.get().is_some().then_some("true")
                aria-describedby=described_by
                bind:value=value
            />
            {hint.map(|h| view! { <p class="field-hint" id=hint_id>{h}</p> })}
            {move || error.get().map(|e| view! { <p class="field-error" id=error_id.clone()>{e}</p> })}
        </div>
    }
}
