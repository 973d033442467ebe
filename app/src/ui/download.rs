//! Saving text the server sent as a file in the browser (a Blob behind a temporary link), so a
//! download goes through a server function like every other request: POST, same-origin, and in
//! the tenant and role matrices.

/// Offer `text` as the file `file_name`. Browser only; on the server it does nothing.
#[cfg(feature = "hydrate")]
pub fn save_text(file_name: &str, mime: &str, text: &str) -> Result<(), String> {
    use wasm_bindgen::{JsCast, JsValue};

    let failed = |what: &str| format!("The browser refused to save the file ({what}).");
    let parts = web_sys::js_sys::Array::of1(&JsValue::from_str(text));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options)
        .map_err(|_| failed("blob"))?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| failed("url"))?;
    let link = leptos::prelude::document()
        .create_element("a")
        .map_err(|_| failed("link"))?
        .dyn_into::<web_sys::HtmlAnchorElement>()
        .map_err(|_| failed("link"))?;
    link.set_href(&url);
    link.set_download(file_name);
    link.click();
    // The download has started from the URL; let it go once the browser has read it.
    leptos::prelude::set_timeout(
        move || {
            let _ = web_sys::Url::revoke_object_url(&url);
        },
        std::time::Duration::from_secs(30),
    );
    Ok(())
}

/// Offer `text` as the file `file_name`. Browser only; on the server it does nothing.
#[cfg(not(feature = "hydrate"))]
pub fn save_text(_file_name: &str, _mime: &str, _text: &str) -> Result<(), String> {
    Ok(())
}
