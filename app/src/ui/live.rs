//! Live pages: a counter that goes up whenever the server announces a device health change or a
//! drift mark on `/api/events` (server-sent events), throttled, and when the stream reopens (events are not
//! replayed, so what changed during a reconnect, or on the fleet page before hydration, would
//! otherwise be missed).
//! Pages read it in their resources' sources to re-read what they show.

use leptos::prelude::*;

/// At most one re-read per this long, however many events arrive.
#[cfg(feature = "hydrate")]
const LIVE_THROTTLE: std::time::Duration = std::time::Duration::from_millis(750);

/// Re-read the page when the server announces a health change, and when the stream reopens (the
/// fleet page also on its first open). Browser only.
#[cfg(feature = "hydrate")]
pub fn follow_events(live: RwSignal<u32>, only_device: Option<String>) {
    use wasm_bindgen::closure::Closure;
    use wasm_bindgen::JsCast;

    Effect::new(move |_| {
        let Ok(source) = web_sys::EventSource::new("/api/events") else {
            return;
        };
        let pending = StoredValue::new(false);
        let bump = move || {
            if !pending.get_value() {
                pending.set_value(true);
                set_timeout(
                    move || {
                        pending.set_value(false);
                        live.update(|n| *n = n.wrapping_add(1));
                    },
                    LIVE_THROTTLE,
                );
            }
        };
        // A page about one device re-reads only for that device's events (and resyncs).
        let wanted = only_device
            .clone()
            .map(|id| format!("\"device_id\":\"{id}\""));
        let on_event =
            Closure::<dyn Fn(web_sys::MessageEvent)>::new(move |event: web_sys::MessageEvent| {
                let relevant = match (&wanted, event.data().as_string()) {
                    (Some(wanted), Some(data)) if event.type_() != "resync" => {
                        data.contains(wanted.as_str())
                    }
                    _ => true,
                };
                if relevant {
                    bump();
                }
            });
        for kind in ["health", "drift", "resync"] {
            let _ =
                source.add_event_listener_with_callback(kind, on_event.as_ref().unchecked_ref());
        }
        // Re-read after a reconnect (what it missed) and, on the fleet page, on the first open too
        // (what changed between the server's render and hydration: events are not replayed). A
        // device page skips the first: its own actions update it, and a re-read then would show
        // the last poll, which may predate an action just taken.
        let opened = StoredValue::new(only_device.is_none());
        let on_open = Closure::<dyn Fn(web_sys::Event)>::new(move |_: web_sys::Event| {
            if opened.get_value() {
                bump();
            }
            opened.set_value(true);
        });
        source.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        let source = send_wrapper::SendWrapper::new(source);
        on_cleanup(move || source.close());
        // The page keeps these for its lifetime.
        on_event.forget();
        on_open.forget();
    });
}

#[cfg(not(feature = "hydrate"))]
pub fn follow_events(_live: RwSignal<u32>, _only_device: Option<String>) {}
