//! `/devices`: registered firewalls, inactive and active.

use leptos::prelude::*;

use crate::ui::page::PageHeader;

#[component]
pub fn DevicesPage() -> impl IntoView {
    view! {
        <PageHeader title="Devices" subtitle="Firewalls registered in this organisation."/>
        <section class="card">
            <h2>"Active"</h2>
            <div class="table-wrap">
                <table class="table">
                    <caption class="visually-hidden">"Active devices"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Name"</th>
                            <th scope="col">"Host"</th>
                            <th scope="col">"SSH port"</th>
                            <th scope="col">"Version"</th>
                            <th scope="col">"State"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <tr><td colspan="5" class="table-empty">"No devices registered yet."</td></tr>
                    </tbody>
                </table>
            </div>
        </section>
    }
}
