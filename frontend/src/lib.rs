//! The browser entry point. It owns nothing but the call that hydrates the server-rendered page:
//! every component lives in `app`.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
