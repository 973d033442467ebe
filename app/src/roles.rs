//! Roles within an organisation and what each may do. The server checks these on every write;
//! the UI uses the same methods only to hide what would be refused anyway.

use serde::{Deserialize, Serialize};

/// A member's role. Ordered from most to least powerful.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including members, ownership and deleting the organisation.
    Owner,
    /// Everything but ownership.
    Admin,
    /// Operates devices and pushes changes.
    Operator,
    /// Reads only.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Owner, Role::Admin, Role::Operator, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::Owner => "Owner",
            Role::Admin => "Admin",
            Role::Operator => "Operator",
            Role::Viewer => "Viewer",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Role::Owner => "everything, including members and deleting the organisation",
            Role::Admin => "everything except ownership",
            Role::Operator => "operate devices and push changes",
            Role::Viewer => "read only",
        }
    }

    /// Rename the organisation, invite and manage members, see and retry failed jobs.
    pub fn can_administer(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Act on devices (activate, restart services, push changes).
    pub fn can_operate(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Operator)
    }

    /// Delete the organisation.
    pub fn can_delete_org(self) -> bool {
        self == Role::Owner
    }

    /// Give `target` to someone, or take it away from them: owners can grant any role; admins
    /// any role but owner, and cannot change an owner.
    pub fn can_grant(self, target: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => target != Role::Owner,
            Role::Operator | Role::Viewer => false,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_rank() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        assert!(Role::Owner.can_grant(Role::Owner));
        assert!(!Role::Admin.can_grant(Role::Owner));
        assert!(Role::Admin.can_grant(Role::Admin));
        assert!(!Role::Operator.can_grant(Role::Viewer));
        assert!(Role::Operator.can_operate() && !Role::Operator.can_administer());
        assert!(!Role::Viewer.can_operate());
        assert!(!Role::Admin.can_delete_org());
    }
}
