//! Device groups: organisation-defined named sets of devices (one per customer, site or role),
//! used to filter the fleet now and as rollout targets later. A device may be in several groups.
//! Operators and above create, rename, delete and fill groups; viewers only read. Types, rules
//! and server functions live here, the page in [`page`].

pub mod page;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::AppError;

/// Longest group name, in characters.
pub const NAME_MAX: usize = 60;

/// A group as lists show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: String,
    pub name: String,
    pub devices: u64,
}

/// A group with the ids of its devices (for ticking them in the member list).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMembership {
    pub group: Group,
    pub device_ids: Vec<String>,
}

/// A group name as stored: trimmed, inner runs of white space made one space; a sentence saying
/// what is wrong otherwise. The same rule runs in the browser and on the server.
pub fn group_name(input: &str) -> Result<String, String> {
    let name = input.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err("Give the group a name, e.g. the customer's.".to_owned());
    }
    if name.chars().count() > NAME_MAX {
        return Err(format!(
            "A group name has at most {NAME_MAX} characters; this one has {}.",
            name.chars().count()
        ));
    }
    if name.chars().any(char::is_control) {
        return Err("A group name cannot contain control characters.".to_owned());
    }
    Ok(name)
}

/// The current organisation's groups, by name, with their device counts.
#[server(prefix = "/api", endpoint = "groups/list")]
pub async fn list_groups() -> Result<Vec<Group>, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.groups.list(&caller).await)
}

/// One group and its devices.
#[server(prefix = "/api", endpoint = "groups/get")]
pub async fn fetch_group(id: String) -> Result<GroupMembership, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.groups.get(&caller, id).await)
}

/// A new, empty group. Names are unique in the organisation, whatever their case.
#[server(prefix = "/api", endpoint = "groups/create")]
pub async fn create_group(name: String) -> Result<Group, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.groups.create(&caller, name).await)
}

#[server(prefix = "/api", endpoint = "groups/rename")]
pub async fn rename_group(id: String, name: String) -> Result<Group, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.groups.rename(&caller, id, name).await)
}

/// Delete a group; its devices stay, only the grouping goes.
#[server(prefix = "/api", endpoint = "groups/delete")]
pub async fn delete_group(id: String) -> Result<(), AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(services()?.groups.delete(&caller, id).await)
}

/// Put a device in a group (`member = true`) or take it out; doing it twice changes nothing.
#[server(prefix = "/api", endpoint = "groups/set-member")]
pub async fn set_group_member(
    id: String,
    device_id: String,
    member: bool,
) -> Result<Group, AppError> {
    use crate::services::{caller, respond, services};
    let caller = respond(caller())?;
    respond(
        services()?
            .groups
            .set_member(&caller, id, device_id, member)
            .await,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_tidied_and_checked() {
        assert_eq!(group_name("  Acme   Corp ").as_deref(), Ok("Acme Corp"));
        assert!(group_name("   ").is_err());
        assert!(group_name(&"x".repeat(NAME_MAX + 1)).is_err());
        assert!(group_name(&"é".repeat(NAME_MAX)).is_ok());
        assert!(group_name("a\u{7}b").is_err());
    }
}
