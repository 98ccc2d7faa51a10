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

/// The rows of `activities` Barong would store, as it stores them: the invalid ones dropped,
/// and `"note":"Detected suspicious browser"` merged into `data` for an agent that is no
/// known browser.
pub fn storable(activities: &[NewActivity]) -> Vec<NewActivity> {
    activities
        .iter()
        .filter(|a| a.is_valid())
        .cloned()
        .map(NewActivity::with_browser_note)
        .collect()
}

/// Tokens of the browsers Barong's browser detection (the `browser` gem) knows; any other agent
/// (a script, a bot, an empty or made-up one) is "suspicious".
const KNOWN_BROWSERS: &[&str] = &[
    "Chrome/",
    "CriOS/",
    "Chromium/",
    "Firefox/",
    "FxiOS/",
    "Safari/",
    "Edge/",
    "Edg/",
    "EdgA/",
    "EdgiOS/",
    "MSIE ",
    "Trident/",
    "Opera",
    "OPR/",
    "OPiOS/",
    "UCBrowser",
    "SamsungBrowser/",
    "YaBrowser/",
    "MicroMessenger/",
    "QQBrowser/",
    "MQQBrowser/",
    "AlipayClient/",
    "Electron/",
    "FBAN/",
    "FBAV/",
    "Instagram",
    "Weibo",
    "Snapchat",
    "Otter/",
    "Vivaldi/",
    "BlackBerry",
    "BB10",
    "Nokia",
    "Sputnik/",
    "HuaweiBrowser/",
    "Konqueror/",
    "PaleMoon/",
    "Maxthon",
];

/// Whether `agent` names a browser Barong recognises.
pub fn is_known_browser(agent: &str) -> bool {
    KNOWN_BROWSERS.iter().any(|token| agent.contains(token))
}

impl NewActivity {
    /// Adds Barong's suspicious-browser note to `data` (creating `{"note":...}` when empty).
    pub fn with_browser_note(mut self) -> Self {
        if is_known_browser(&self.user_agent) {
            return self;
        }
        let mut data = self
            .data
            .as_deref()
            .and_then(|d| {
                serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(d).ok()
            })
            .unwrap_or_default();
        data.insert(
            "note".into(),
            serde_json::Value::String("Detected suspicious browser".into()),
        );
        self.data = Some(serde_json::Value::Object(data).to_string());
        self
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn activity(agent: &str, data: Option<&str>) -> NewActivity {
        NewActivity {
            user_id: 1,
            target_uid: None,
            category: "user".into(),
            user_ip: "127.0.0.1".into(),
            user_ip_country: None,
            user_agent: agent.into(),
            topic: "session".into(),
            action: "login".into(),
            result: "succeed".into(),
            data: data.map(str::to_owned),
        }
    }

    #[test]
    fn unknown_browsers_get_barongs_note() {
        let chrome =
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36";
        let rows = storable(&[
            activity(chrome, Some(r#"{"reason":"x"}"#)),
            activity("curl/8.5.0", None),
            activity("python-requests/2.31", Some(r#"{"reason":"x"}"#)),
            activity("", None),
        ]);
        assert_eq!(rows.len(), 3, "the row without an agent is dropped");
        assert_eq!(rows[0].data.as_deref(), Some(r#"{"reason":"x"}"#));
        assert_eq!(
            rows[1].data.as_deref(),
            Some(r#"{"note":"Detected suspicious browser"}"#)
        );
        assert_eq!(
            rows[2].data.as_deref(),
            Some(r#"{"reason":"x","note":"Detected suspicious browser"}"#)
        );
    }
}
