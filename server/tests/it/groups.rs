//! Device groups through the real path (server functions over HTTP, a real database): names are
//! checked and unique per organisation whatever their case, membership is saved per device,
//! the fleet filters by group, deleting a group keeps its devices, and roles decide who changes
//! groups — and who may reboot a firewall.

use crate::accounts::{device_form, invite_and_join, start};
use crate::support::TestDbRef;
use serde_json::Value;

fn id(body: &Value) -> String {
    body["id"].as_str().unwrap().to_owned()
}

async fn groups_filter_the_fleet_and_only_operators_change_them(db: &TestDbRef) {
    let env = start(db).await;
    let owner = env.member("owner@example.com", "Acme MSP").await;
    let viewer = invite_and_join(&env, &owner, "viewer@example.com", "viewer").await;
    let operator = invite_and_join(&env, &owner, "operator@example.com", "operator").await;
    let mut devices = Vec::new();
    for (name, host) in [
        ("acme-hq", "192.0.2.1"),
        ("acme-branch", "192.0.2.2"),
        ("beta-edge", "192.0.2.3"),
    ] {
        let (status, body) = owner
            .call("devices/add", &device_form(name, host, "22"))
            .await;
        assert_eq!(status, 200, "{body}");
        devices.push(id(&body));
    }

    // Names: tidied, checked, unique whatever their case.
    let (status, body) = operator
        .call("groups/create", &[("name", "  Acme   Corp ")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Acme Corp");
    assert_eq!(body["devices"], 0);
    let acme = id(&body);
    let (status, body) = operator
        .call("groups/create", &[("name", "ACME corp")])
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body.to_string().contains("exists already"), "{body}");
    let (status, body) = operator.call("groups/create", &[("name", "   ")]).await;
    assert_eq!(status, 422, "{body}");
    let long = "x".repeat(61);
    let (status, _) = operator.call("groups/create", &[("name", &long)]).await;
    assert_eq!(status, 422);
    let (status, _) = viewer
        .call("groups/create", &[("name", "Viewers' own")])
        .await;
    assert_eq!(status, 403, "viewers read only");

    // Membership, per device; doing it twice changes nothing.
    for device in &devices[..2] {
        let form = [
            ("id", acme.as_str()),
            ("device_id", device.as_str()),
            ("member", "true"),
        ];
        let (status, body) = operator.call("groups/set-member", &form).await;
        assert_eq!(status, 200, "{body}");
    }
    let form = [
        ("id", acme.as_str()),
        ("device_id", devices[0].as_str()),
        ("member", "true"),
    ];
    let (_, body) = operator.call("groups/set-member", &form).await;
    assert_eq!(body["devices"], 2, "added twice, counted once");
    let form = [
        ("id", acme.as_str()),
        ("device_id", devices[2].as_str()),
        ("member", "true"),
    ];
    let (status, _) = viewer.call("groups/set-member", &form).await;
    assert_eq!(status, 403);
    let form = [
        ("id", acme.as_str()),
        ("device_id", "no-such-device"),
        ("member", "true"),
    ];
    let (status, _) = operator.call("groups/set-member", &form).await;
    assert_eq!(status, 404);

    // Everyone reads; the fleet filters by group.
    let (status, list) = viewer.call("groups/list", &[]).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["name"], "Acme Corp");
    assert_eq!(list[0]["devices"], 2);
    let (_, group) = viewer.call("groups/get", &[("id", &acme)]).await;
    let mut members: Vec<String> = group["device_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    members.sort();
    let mut expected = devices[..2].to_vec();
    expected.sort();
    assert_eq!(members, expected);
    let (status, page) = viewer.call("fleet/list", &[("group", &acme)]).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["matching"], 2, "{page}");
    assert_eq!(
        page["counts"]["all"], 3,
        "counts stay the whole organisation's"
    );
    assert!(page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["id"] != devices[2].as_str()));
    assert_eq!(page["groups"][0]["name"], "Acme Corp");
    let (_, page) = viewer
        .call("fleet/list", &[("group", &acme), ("search", "branch")])
        .await;
    assert_eq!(page["matching"], 1, "filters combine: {page}");

    // Out again, renamed, deleted: the devices stay.
    let form = [
        ("id", acme.as_str()),
        ("device_id", devices[1].as_str()),
        ("member", "false"),
    ];
    let (_, body) = operator.call("groups/set-member", &form).await;
    assert_eq!(body["devices"], 1);
    let (status, body) = operator
        .call("groups/rename", &[("id", &acme), ("name", "Acme Inc")])
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Acme Inc");
    let (status, _) = viewer.call("groups/delete", &[("id", &acme)]).await;
    assert_eq!(status, 403);
    let (status, _) = operator.call("groups/delete", &[("id", &acme)]).await;
    assert_eq!(status, 200);
    let (_, list) = owner.call("groups/list", &[]).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    let (_, all) = owner.call("devices/list", &[]).await;
    assert_eq!(
        all.as_array().unwrap().len(),
        3,
        "deleting a group keeps its devices"
    );
    let (status, _) = operator.call("groups/delete", &[("id", &acme)]).await;
    assert_eq!(status, 404);

    // Reboot and shutdown are for owners and admins; an inactive device cannot be rebooted.
    let power = [
        ("id", devices[0].as_str()),
        ("action", "reboot"),
        ("confirm", "acme-hq"),
    ];
    let (status, _) = viewer.call("devices/power", &power).await;
    assert_eq!(status, 403);
    let (status, _) = operator.call("devices/power", &power).await;
    assert_eq!(status, 403);
    let (status, body) = owner.call("devices/power", &power).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("not active"), "{body}");
    let wrong = [
        ("id", devices[0].as_str()),
        ("action", "reboot"),
        ("confirm", "acme"),
    ];
    let (status, body) = owner.call("devices/power", &wrong).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.to_string().contains("Type the device's name"),
        "{body}"
    );
    let bad = [
        ("id", devices[0].as_str()),
        ("action", "explode"),
        ("confirm", "acme-hq"),
    ];
    let (status, _) = owner.call("devices/power", &bad).await;
    assert_eq!(status, 422);
    env.server.stop().await.unwrap();
}

on_both_engines!(groups_filter_the_fleet_and_only_operators_change_them);
