//! The signed-out pages: sign in (with the second-factor step), register, confirm email, forgot
//! and reset password, and the invitation landing page. Each form shows the server's sentence
//! when something is wrong, and leaves the page by a full navigation once a session changes, so
//! every part of the app starts from the new session.

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

use super::*;
use crate::orgs::{AcceptInvitation, InvitationPreview};
use crate::ui::field::TextField;

/// Leave for `path` with a full page load (the session cookie just changed).
pub fn go(path: &str) {
    let _ = window().location().set_href(path);
}

/// A query parameter of the current URL.
fn query(name: &'static str) -> Memo<Option<String>> {
    let query = use_query_map();
    Memo::new(move |_| query.read().get(name).filter(|v| !v.is_empty()))
}

/// The form-level error, announced to screen readers.
#[component]
pub fn FormError(#[prop(into)] error: Signal<Option<String>>) -> impl IntoView {
    move || {
        error
            .get()
            .map(|e| view! { <p class="form-error" role="alert">{e}</p> })
    }
}

/// The error sentence of an action's latest result, if it failed.
pub fn error_of<T, S>(value: S) -> Signal<Option<String>>
where
    T: Clone + Send + Sync + 'static,
    S: Get<Value = Option<Result<T, AppError>>> + Send + Sync + 'static,
{
    Signal::derive(move || value.get().and_then(|r| r.err()).map(|e| e.to_string()))
}

/// A narrow card for the signed-out pages.
#[component]
fn AuthCard(title: &'static str, children: Children) -> impl IntoView {
    view! {
        <leptos_meta::Title text=title/>
        <section class="card auth-card">
            <h1>{title}</h1>
            {children()}
        </section>
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let next = query("next");
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let login = ServerAction::<Login>::new();
    let second = ServerAction::<LoginCode>::new();
    let resend = ServerAction::<ResendVerification>::new();
    let needs_code = RwSignal::new(false);
    Effect::new(move |_| match login.value().get() {
        Some(Ok(LoginOutcome::SignedIn { next })) => go(&next),
        Some(Ok(LoginOutcome::SecondFactor)) => needs_code.set(true),
        _ => {}
    });
    Effect::new(move |_| {
        if let Some(Ok(LoginOutcome::SignedIn { next })) = second.value().get() {
            go(&next);
        }
    });
    let unverified =
        Signal::derive(move || matches!(login.value().get(), Some(Err(AppError::Unverified(_)))));
    view! {
        <AuthCard title="Sign in">
            <Show
                when=move || needs_code.get()
                fallback=move || view! {
                    <form
                        class="form"
                        method="post"
                        action="/api/auth/login"
                        on:submit=move |ev| {
                            ev.prevent_default();
                            login.dispatch(Login { email: email.get(), password: password.get(), next: next.get() });
                        }
                    >
                        <TextField label="Email" name="email" input_type="email" value=email required=true autocomplete="username"/>
                        <TextField label="Password" name="password" input_type="password" value=password required=true autocomplete="current-password"/>
                        <FormError error=error_of(login.value())/>
                        <Show when=move || unverified.get()>
                            <div class="row">
                                <button
                                    type="button"
                                    class="btn"
                                    on:click=move |_| { resend.dispatch(ResendVerification { email: email.get() }); }
                                >
                                    "Send a new link"
                                </button>
                                {move || resend.value().get().map(|r| match r {
                                    Ok(()) => view! { <span role="status">"Sent. Check your inbox."</span> }.into_any(),
                                    Err(e) => view! { <span class="field-error" role="alert">{e.to_string()}</span> }.into_any(),
                                })}
                            </div>
                        </Show>
                        <div class="form-actions">
                            <button type="submit" class="btn btn-primary" disabled=move || login.pending().get()>
                                {move || if login.pending().get() { "Signing in…" } else { "Sign in" }}
                            </button>
                        </div>
                        <p class="muted">
                            <a href="/forgot-password">"Forgot your password?"</a>
                            " · "
                            <a href="/register">"Create an account"</a>
                        </p>
                    </form>
                }
            >
                <form
                    class="form"
                    method="post"
                    action="/api/auth/login-code"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        second.dispatch(LoginCode { code: code.get(), next: next.get() });
                    }
                >
                    <p>"Enter the 6-digit code from your authenticator app, or one of your recovery codes."</p>
                    <TextField label="Code" name="code" value=code required=true autocomplete="one-time-code"/>
                    <FormError error=error_of(second.value())/>
                    <div class="form-actions">
                        <button type="submit" class="btn btn-primary" disabled=move || second.pending().get()>
                            "Verify"
                        </button>
                    </div>
                </form>
            </Show>
        </AuthCard>
    }
}

#[component]
pub fn RegisterPage() -> impl IntoView {
    let email = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let org_name = RwSignal::new(String::new());
    let register = ServerAction::<Register>::new();
    Effect::new(move |_| {
        if let Some(Ok(Registered::Joined { .. })) = register.value().get() {
            go("/");
        }
    });
    view! {
        <AuthCard title="Create your account">
            {move || match register.value().get() {
                Some(Ok(Registered::VerificationSent { email })) => view! {
                    <div role="status" class="notice">
                        <p><strong>"Check your inbox."</strong></p>
                        <p>{format!("We sent a link to {email}. Open it to confirm your address, then sign in. The link works for 24 hours.")}</p>
                    </div>
                }.into_any(),
                _ => view! {
                    <form
                        class="form"
                        method="post"
                        action="/api/auth/register"
                        on:submit=move |ev| {
                            ev.prevent_default();
                            register.dispatch(Register {
                                email: email.get(),
                                password: password.get(),
                                org_name: org_name.get(),
                                invitation: None,
                            });
                        }
                    >
                        <TextField label="Email" name="email" input_type="email" value=email required=true autocomplete="email"/>
                        <TextField
                            label="Password"
                            name="password"
                            input_type="password"
                            value=password
                            required=true
                            autocomplete="new-password"
                            hint="At least 10 characters. A few unrelated words work well."
                        />
                        <TextField
                            label="Organisation"
                            name="org_name"
                            value=org_name
                            hint="Your company or team; you can rename it later."
                            placeholder="Acme IT"
                        />
                        <FormError error=error_of(register.value())/>
                        <div class="form-actions">
                            <button type="submit" class="btn btn-primary" disabled=move || register.pending().get()>
                                {move || if register.pending().get() { "Creating…" } else { "Create account" }}
                            </button>
                        </div>
                        <p class="muted">"Have an account? " <a href="/login">"Sign in"</a></p>
                    </form>
                }.into_any(),
            }}
        </AuthCard>
    }
}

#[component]
pub fn VerifyEmailPage() -> impl IntoView {
    let token = query("token");
    let result = Resource::new(
        move || token.get(),
        |token| async move {
            match token {
                Some(token) => verify_email(token).await,
                None => Err(AppError::Invalid(
                    "This page needs the link from the mail we sent you.".to_owned(),
                )),
            }
        },
    );
    view! {
        <AuthCard title="Confirm your email">
            <Suspense fallback=|| view! { <p>"Checking the link…"</p> }>
                {move || result.get().map(|r| match r {
                    Ok(email) => view! {
                        <div role="status" class="notice">
                            <p>{format!("Thank you: {email} is confirmed.")}</p>
                            <p><a class="btn btn-primary" href="/login">"Sign in"</a></p>
                        </div>
                    }.into_any(),
                    Err(e) => view! {
                        <p class="form-error" role="alert">{e.to_string()}</p>
                        <p><a href="/login">"Go to sign in"</a></p>
                    }.into_any(),
                })}
            </Suspense>
        </AuthCard>
    }
}

#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    let email = RwSignal::new(String::new());
    let action = ServerAction::<ForgotPassword>::new();
    view! {
        <AuthCard title="Reset your password">
            {move || match action.value().get() {
                Some(Ok(())) => view! {
                    <div role="status" class="notice">
                        <p>{format!("If an account exists for {}, a reset link is on its way. It works for 60 minutes.", email.get())}</p>
                        <p><a href="/login">"Back to sign in"</a></p>
                    </div>
                }.into_any(),
                _ => view! {
                    <form
                        class="form"
                        method="post"
                        action="/api/auth/forgot-password"
                        on:submit=move |ev| {
                            ev.prevent_default();
                            action.dispatch(ForgotPassword { email: email.get() });
                        }
                    >
                        <p>"We will mail you a link to choose a new password."</p>
                        <TextField label="Email" name="email" input_type="email" value=email required=true autocomplete="email"/>
                        <FormError error=error_of(action.value())/>
                        <div class="form-actions">
                            <button type="submit" class="btn btn-primary" disabled=move || action.pending().get()>"Send link"</button>
                        </div>
                    </form>
                }.into_any(),
            }}
        </AuthCard>
    }
}

#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let token = query("token");
    let password = RwSignal::new(String::new());
    let action = ServerAction::<ResetPassword>::new();
    view! {
        <AuthCard title="Choose a new password">
            {move || match action.value().get() {
                Some(Ok(())) => view! {
                    <div role="status" class="notice">
                        <p>"Your password is changed, and every other session is signed out."</p>
                        <p><a class="btn btn-primary" href="/login">"Sign in"</a></p>
                    </div>
                }.into_any(),
                _ => view! {
                    <form
                        class="form"
                        method="post"
                        action="/api/auth/reset-password"
                        on:submit=move |ev| {
                            ev.prevent_default();
                            action.dispatch(ResetPassword { token: token.get().unwrap_or_default(), password: password.get() });
                        }
                    >
                        <TextField
                            label="New password"
                            name="password"
                            input_type="password"
                            value=password
                            required=true
                            autocomplete="new-password"
                            hint="At least 10 characters."
                        />
                        <FormError error=error_of(action.value())/>
                        <div class="form-actions">
                            <button type="submit" class="btn btn-primary" disabled=move || action.pending().get()>"Change password"</button>
                        </div>
                    </form>
                }.into_any(),
            }}
        </AuthCard>
    }
}

/// `/invite?token=…`: what the invitation offers, then accept (signed in as the invited
/// address), sign in, or register through it.
#[component]
pub fn InvitePage() -> impl IntoView {
    let token = query("token");
    let preview = Resource::new(
        move || token.get(),
        |token| async move {
            match token {
                Some(token) => crate::orgs::preview_invitation(token).await,
                None => Err(AppError::Invalid(
                    "This page needs the link from your invitation mail.".to_owned(),
                )),
            }
        },
    );
    view! {
        <AuthCard title="Invitation">
            <Suspense fallback=|| view! { <p>"Reading the invitation…"</p> }>
                {move || preview.get().map(|r| match r {
                    Ok(preview) => view! { <InviteOffer preview token=token.get().unwrap_or_default()/> }.into_any(),
                    Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                })}
            </Suspense>
        </AuthCard>
    }
}

#[component]
fn InviteOffer(preview: InvitationPreview, token: String) -> impl IntoView {
    let accept = ServerAction::<AcceptInvitation>::new();
    let register = ServerAction::<Register>::new();
    let logout = ServerAction::<Logout>::new();
    let password = RwSignal::new(String::new());
    Effect::new(move |_| {
        if let Some(Ok(_)) = accept.value().get() {
            go("/");
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(Registered::Joined { .. })) = register.value().get() {
            go("/");
        }
    });
    Effect::new(move |_| {
        if let Some(Ok(())) = logout.value().get() {
            let _ = window().location().reload();
        }
    });
    let inviter = preview
        .inviter_email
        .clone()
        .unwrap_or_else(|| "An administrator".to_owned());
    let summary = format!(
        "{inviter} invited {} to join {} as {} ({}).",
        preview.email,
        preview.org_name,
        preview.role.label(),
        preview.role.describe()
    );
    let next = format!("/invite?token={token}");
    let action = match (&preview.signed_in_as, preview.account_exists) {
        (Some(me), _) if *me == preview.email => {
            let token = token.clone();
            view! {
                <FormError error=error_of(accept.value())/>
                <button
                    class="btn btn-primary"
                    on:click=move |_| { accept.dispatch(AcceptInvitation { token: token.clone() }); }
                    disabled=move || accept.pending().get()
                >
                    {format!("Join {}", preview.org_name)}
                </button>
            }
            .into_any()
        }
        (Some(me), _) => view! {
            <p>{format!("You are signed in as {me}. Sign out, then open this link again to accept as {}.", preview.email)}</p>
            <button class="btn" on:click=move |_| { logout.dispatch(Logout {}); }>"Sign out"</button>
        }
        .into_any(),
        (None, true) => view! {
            <p>"You already have an account. Sign in to accept."</p>
            <a class="btn btn-primary" href=format!("/login?next={}", next.replace('?', "%3F").replace('=', "%3D"))>"Sign in to accept"</a>
        }
        .into_any(),
        (None, false) => {
            let email = preview.email.clone();
            view! {
                <form
                    class="form"
                    method="post"
                    action="/api/auth/register"
                    on:submit=move |ev| {
                        ev.prevent_default();
                        register.dispatch(Register {
                            email: email.clone(),
                            password: password.get(),
                            org_name: String::new(),
                            invitation: Some(token.clone()),
                        });
                    }
                >
                    <p>{format!("Create your account for {} to accept.", preview.email)}</p>
                    <TextField
                        label="Choose a password"
                        name="password"
                        input_type="password"
                        value=password
                        required=true
                        autocomplete="new-password"
                        hint="At least 10 characters. A few unrelated words work well."
                    />
                    <FormError error=error_of(register.value())/>
                    <div class="form-actions">
                        <button type="submit" class="btn btn-primary" disabled=move || register.pending().get()>
                            "Create account and join"
                        </button>
                    </div>
                </form>
            }
            .into_any()
        }
    };
    view! {
        <p data-testid="invitation-summary">{summary}</p>
        {action}
    }
}
