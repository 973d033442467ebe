//! `/settings/account`: the signed-in user's own settings — password and two-factor sign-in.

use leptos::prelude::*;

use super::*;
use crate::auth::pages::{error_of, FormError};
use crate::orgs::pages::SettingsNav;
use crate::ui::field::TextField;
use crate::ui::page::PageHeader;
use crate::ui::toast::use_toasts;

#[component]
pub fn AccountPage() -> impl IntoView {
    let me = use_me();
    let toasts = use_toasts();
    let current = RwSignal::new(String::new());
    let new_password = RwSignal::new(String::new());
    let change = ServerAction::<ChangePassword>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = change.value().get() {
            toasts.success("Password changed. Your other sessions are signed out.");
            current.set(String::new());
            new_password.set(String::new());
        }
    });
    let email = Signal::derive(move || {
        me.get()
            .and_then(Result::ok)
            .flatten()
            .map(|me| me.email)
            .unwrap_or_default()
    });
    view! {
        <PageHeader title="Your account" subtitle="How you sign in to Mudmap."/>
        <SettingsNav/>
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
        <section class="card" aria-labelledby="password-heading">
            <h2 id="password-heading">"Password"</h2>
            <p class="muted">{move || format!("Signed in as {}.", email.get())}</p>
            <form class="form" on:submit=move |ev| {
                ev.prevent_default();
                change.dispatch(ChangePassword { current: current.get(), password: new_password.get() });
            }>
                <TextField label="Current password" name="current-password" input_type="password" value=current required=true autocomplete="current-password"/>
                <TextField label="New password" name="new-password" input_type="password" value=new_password required=true autocomplete="new-password" hint="At least 10 characters."/>
                <FormError error=error_of(change.value())/>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=move || change.pending().get()>"Change password"</button>
                </div>
            </form>
        </section>
        <TwoFactor/>
        </Transition>
    }
}

#[component]
fn TwoFactor() -> impl IntoView {
    let me = use_me();
    let toasts = use_toasts();
    let begin = ServerAction::<TotpBegin>::new();
    let enable = ServerAction::<TotpEnable>::new();
    let disable = ServerAction::<TotpDisable>::new();
    let code = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let enabled = Signal::derive(move || {
        me.get()
            .and_then(Result::ok)
            .flatten()
            .is_some_and(|me| me.totp_enabled)
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = disable.value().get() {
            toasts.success("Two-factor sign-in is off.");
            password.set(String::new());
            me.refetch();
        }
    });
    view! {
        <section class="card" aria-labelledby="totp-heading">
            <h2 id="totp-heading">"Two-factor sign-in"</h2>
            {move || {
                if let Some(Ok(codes)) = enable.value().get() {
                    return view! {
                        <div role="status" class="notice">
                            <p><strong>"Two-factor sign-in is on."</strong>" Keep these recovery codes somewhere safe: each works once if you lose your device. They are shown only now."</p>
                            <ul class="recovery-codes" data-testid="recovery-codes">
                                {codes.into_iter().map(|c| view! { <li><code>{c}</code></li> }).collect_view()}
                            </ul>
                        </div>
                    }.into_any();
                }
                if enabled.get() {
                    return view! {
                        <p>"On: signing in asks for a code from your authenticator app."</p>
                        <form class="form" on:submit=move |ev| {
                            ev.prevent_default();
                            disable.dispatch(TotpDisable { password: password.get() });
                        }>
                            <TextField label="Password, to turn it off" name="totp-off-password" input_type="password" value=password required=true autocomplete="current-password"/>
                            <FormError error=error_of(disable.value())/>
                            <div class="form-actions"><button type="submit" class="btn btn-danger">"Turn off"</button></div>
                        </form>
                    }.into_any();
                }
                match begin.value().get() {
                    Some(Ok(enrolment)) => view! {
                        <p>"Scan the code with an authenticator app (or type the key), then enter the 6-digit code it shows."</p>
                        {enrolment.qr_svg.map(|svg| view! { <div class="qr" inner_html=svg></div> })}
                        <p>"Key: " <code data-testid="totp-secret">{enrolment.secret}</code></p>
                        <form class="form" on:submit=move |ev| {
                            ev.prevent_default();
                            enable.dispatch(TotpEnable { code: code.get() });
                        }>
                            <TextField label="Code from the app" name="totp-code" value=code required=true autocomplete="one-time-code"/>
                            <FormError error=error_of(enable.value())/>
                            <div class="form-actions"><button type="submit" class="btn btn-primary">"Turn on"</button></div>
                        </form>
                    }.into_any(),
                    other => view! {
                        <p>"Off. With it on, signing in also asks for a code from an app on your phone."</p>
                        {other.and_then(|r| r.err()).map(|e| view! { <p class="form-error" role="alert">{e.to_string()}</p> })}
                        <button class="btn btn-primary" on:click=move |_| { begin.dispatch(TotpBegin {}); }>"Set up two-factor sign-in"</button>
                    }.into_any(),
                }
            }}
        </section>
    }
}
