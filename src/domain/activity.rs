//! Activity records: what users (category `user`) and audited principals (category `admin`) did.

use chrono::{DateTime, Utc};

/// A stored activity row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: i64,
    pub user_id: i64,
    pub target_uid: Option<String>,
    pub category: String,
    pub user_ip: String,
    pub user_ip_country: Option<String>,
    pub user_agent: String,
    pub topic: String,
    pub action: String,
    pub result: String,
    pub data: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// An activity to record. Rows that break Barong's rules (see [`NewActivity::is_valid`]) are
/// dropped silently, as Barong drops them: the request itself is not affected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActivity {
    pub user_id: i64,
    pub target_uid: Option<String>,
    pub category: String,
    pub user_ip: String,
    pub user_ip_country: Option<String>,
    pub user_agent: String,
    pub topic: String,
    pub action: String,
    pub result: String,
    pub data: Option<String>,
}

impl NewActivity {
    /// Barong's validations: result and category from fixed sets, ip/agent/topic/action
    /// present, no target for the `user` category.
    pub fn is_valid(&self) -> bool {
        matches!(self.result.as_str(), "succeed" | "failed" | "denied")
            && matches!(self.category.as_str(), "admin" | "user")
            && !self.user_ip.is_empty()
            && !self.user_agent.is_empty()
            && !self.topic.is_empty()
            && !self.action.is_empty()
            && !(self.category == "user"
                && self.target_uid.as_deref().is_some_and(|t| !t.is_empty()))
    }
}
