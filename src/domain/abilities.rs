//! Barong's admin abilities (`config/abilities.yml`): which role may read or
//! manage which resource. The admin API asks [`permits`] and nothing else.

use serde_json::{Value, json};

use super::role;

/// What an admin call wants to do to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Update,
    Destroy,
}

/// The models abilities are granted on, named as Barong names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    Ability,
    User,
    Level,
    Label,
    Profile,
    Activity,
    ApiKey,
    Permission,
    Restriction,
    Document,
}

impl Resource {
    /// The model name in `abilities.yml` and in `GET /admin/abilities`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ability => "Ability",
            Self::User => "User",
            Self::Level => "Level",
            Self::Label => "Label",
            Self::Profile => "Profile",
            Self::Activity => "Activity",
            Self::ApiKey => "APIKey",
            Self::Permission => "Permission",
            Self::Restriction => "Restriction",
            Self::Document => "Document",
        }
    }
}

use Resource::{
    Ability, Activity, ApiKey, Document, Label, Level, Permission, Profile, Restriction, User,
};

/// One role's grants: `manage` (every action) and `read` (read only), as in the YAML.
struct Grants {
    role: &'static str,
    manage: &'static [Resource],
    read: &'static [Resource],
}

/// Barong's default `config/abilities.yml`. A role not listed has no ability.
const DEFAULT: &[Grants] = &[
    Grants {
        role: role::SUPERADMIN,
        manage: &[
            Ability,
            User,
            Level,
            Label,
            Profile,
            Activity,
            ApiKey,
            Permission,
            Restriction,
            Document,
        ],
        read: &[],
    },
    Grants {
        role: role::ADMIN,
        manage: &[
            Ability,
            User,
            Level,
            Label,
            Profile,
            ApiKey,
            Restriction,
            Document,
        ],
        read: &[Activity, Permission],
    },
    Grants {
        role: "technical",
        manage: &[ApiKey, Restriction],
        read: &[Ability, User, Level, Label, Profile, Activity],
    },
    Grants {
        role: "accountant",
        manage: &[],
        read: &[Ability, User, Level, Label, Profile, Activity],
    },
    Grants {
        role: "compliance",
        manage: &[User, Level, Label, Profile],
        read: &[Ability, Document],
    },
    Grants {
        role: "support",
        manage: &[User],
        read: &[Ability, Label, Level, Profile, Activity],
    },
];

fn grants(role: &str) -> Option<&'static Grants> {
    DEFAULT.iter().find(|g| g.role == role)
}

/// Barong's `admin_authorize!(action, Model)` for a caller of `role`.
pub fn permits(role: &str, action: Action, resource: Resource) -> bool {
    grants(role).is_some_and(|g| {
        g.manage.contains(&resource) || (action == Action::Read && g.read.contains(&resource))
    })
}

/// The body of `GET /admin/abilities`: the role's entry of the YAML (`{}` without one).
pub fn ability_map(role: &str) -> Value {
    let Some(g) = grants(role) else {
        return json!({});
    };
    let mut map = serde_json::Map::new();
    let names = |list: &[Resource]| list.iter().map(|r| r.name()).collect::<Vec<_>>();
    if !g.read.is_empty() {
        map.insert("read".into(), json!(names(g.read)));
    }
    if !g.manage.is_empty() {
        map.insert("manage".into(), json!(names(g.manage)));
    }
    Value::Object(map)
}

/// The roles that have an entry (for documentation and tests).
pub fn roles() -> impl Iterator<Item = &'static str> {
    DEFAULT.iter().map(|g| g.role)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manage_grants_everything_read_only_reading() {
        assert!(permits("admin", Action::Destroy, Resource::User));
        assert!(permits("admin", Action::Read, Resource::Permission));
        assert!(!permits("admin", Action::Create, Resource::Permission));
        assert!(permits("technical", Action::Update, Resource::Restriction));
        assert!(!permits("technical", Action::Update, Resource::User));
        assert!(!permits("accountant", Action::Update, Resource::Label));
        assert!(!permits("member", Action::Read, Resource::User));
    }

    #[test]
    fn ability_map_lists_the_role_entry() {
        assert_eq!(
            ability_map("support"),
            json!({"read": ["Ability", "Label", "Level", "Profile", "Activity"], "manage": ["User"]})
        );
        assert_eq!(ability_map("member"), json!({}));
        assert_eq!(roles().count(), 6);
    }
}
