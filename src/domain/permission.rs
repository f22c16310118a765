//! The closed set of model permissions a user can be granted.
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    AddConnection,
    ViewConnection,
    ChangeConnection,
    DeleteConnection,
    AddSource,
    ViewSource,
    ChangeSource,
    DeleteSource,
    /// Read the stored access token of one's own connections (of anyone's together with
    /// `ViewConnection`), refreshing it when needed.
    ReadConnectionToken,
}

impl Permission {
    pub const ALL: [Permission; 9] = [
        Permission::AddConnection,
        Permission::ViewConnection,
        Permission::ChangeConnection,
        Permission::DeleteConnection,
        Permission::AddSource,
        Permission::ViewSource,
        Permission::ChangeSource,
        Permission::DeleteSource,
        Permission::ReadConnectionToken,
    ];

    pub fn codename(self) -> &'static str {
        match self {
            Permission::AddConnection => "add_useroauthsourceconnection",
            Permission::ViewConnection => "view_useroauthsourceconnection",
            Permission::ChangeConnection => "change_useroauthsourceconnection",
            Permission::DeleteConnection => "delete_useroauthsourceconnection",
            Permission::AddSource => "add_oauthsource",
            Permission::ViewSource => "view_oauthsource",
            Permission::ChangeSource => "change_oauthsource",
            Permission::DeleteSource => "delete_oauthsource",
            Permission::ReadConnectionToken => "read_useroauthsourceconnection_token",
        }
    }
}

impl FromStr for Permission {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.codename() == s)
            .ok_or_else(|| {
                let known: Vec<_> = Permission::ALL.iter().map(|p| p.codename()).collect();
                format!("unknown permission {s:?}; known: {}", known.join(", "))
            })
    }
}

/// The authenticated caller, resolved once per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: i32,
    pub username: String,
    pub is_superuser: bool,
    pub permissions: Vec<Permission>,
}

impl Principal {
    /// Superusers hold every permission.
    pub fn has(&self, permission: Permission) -> bool {
        self.is_superuser || self.permissions.contains(&permission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codenames_round_trip_and_unknown_ones_are_refused() {
        for p in Permission::ALL {
            assert_eq!(p.codename().parse::<Permission>().unwrap(), p);
        }
        assert!("add_everything".parse::<Permission>().is_err());
    }

    #[test]
    fn superuser_has_every_permission() {
        let root = Principal {
            user_id: 1,
            username: "root".into(),
            is_superuser: true,
            permissions: vec![],
        };
        assert!(Permission::ALL.iter().all(|p| root.has(*p)));
        let plain = Principal {
            is_superuser: false,
            ..root
        };
        assert!(!plain.has(Permission::AddConnection));
    }
}
