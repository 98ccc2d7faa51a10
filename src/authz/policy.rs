//! Compiled snapshots of permissions and restrictions, and Barong's evaluation rules for both.
//! Pure: loading and refreshing the snapshots is the cache's job.

use std::collections::HashMap;
use std::net::IpAddr;

use http::Method;
use ipnet::IpNet;

use super::path::{Prefix, PrefixKey};
use crate::domain::{Permission, Restriction, default_restriction_code};

/// Permissions grouped by role, in id order (Barong evaluates them as loaded), compiled once
/// per snapshot: verb and action are parsed here, not compared as strings on every decision.
#[derive(Debug, Default)]
pub struct Permissions {
    /// foldhash, not SipHash: the role is looked up on every decision, and the roles come from
    /// the operator's own table.
    by_role: foldhash::HashMap<String, RoleRows>,
}

/// A role's rows, with what refuses most of them for a request kept apart: the verbs each
/// row may allow and its path's key, arrays of a few cache lines that every decision reads.
/// A row itself is read only when both admit the request (`path::PrefixKey`).
#[derive(Debug)]
struct RoleRows {
    verbs: Box<[VerbSet]>,
    keys: Box<[PrefixKey]>,
    rows: Box<[Compiled]>,
}

impl RoleRows {
    fn new(rows: Vec<Compiled>) -> Self {
        Self {
            verbs: rows.iter().map(|row| VerbSet::of_row(&row.verb)).collect(),
            keys: rows.iter().map(|row| row.path.key()).collect(),
            rows: rows.into(),
        }
    }
}

/// One permission row as the decision reads it.
#[derive(Debug)]
struct Compiled {
    verb: Verb,
    path: Prefix,
    action: Action,
    topic: Option<String>,
}

#[derive(Debug)]
enum Verb {
    /// `ALL`.
    Any,
    One(Method),
    /// Not a method name: no request's verb can equal it.
    Never,
}

impl Verb {
    /// Exactly as Barong compares (`verb == "ALL" || verb == method`): case counts.
    fn parse(verb: &str) -> Self {
        match verb {
            "ALL" => Self::Any,
            _ => Method::from_bytes(verb.as_bytes()).map_or(Self::Never, Self::One),
        }
    }

    fn allows(&self, method: &Method) -> bool {
        match self {
            Self::Any => true,
            Self::One(verb) => verb == method,
            Self::Never => false,
        }
    }
}

/// The verbs a row may allow, one bit per standard method and one for all the others: a row
/// whose set misses the request's verb does not apply. Never narrower than [`Verb::allows`]
/// (a test holds the two together); a row it admits is still judged by its own `Verb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct VerbSet(u16);

impl VerbSet {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::CONNECT,
        Method::PATCH,
        Method::TRACE,
    ];
    /// Any method not in [`Self::STANDARD`].
    const EXTENSION: u16 = 1 << 9;

    fn of_method(method: &Method) -> Self {
        Self::STANDARD
            .iter()
            .position(|standard| standard == method)
            .map_or(Self(Self::EXTENSION), |i| Self(1 << i))
    }

    fn of_row(verb: &Verb) -> Self {
        match verb {
            Verb::Any => Self(u16::MAX),
            Verb::One(method) => Self::of_method(method),
            Verb::Never => Self(0),
        }
    }

    fn meets(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }
}

/// The actions Barong knows; rows with any other action apply but decide nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Accept,
    Drop,
    Audit,
    Other,
}

/// The RBAC outcome for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionDecision {
    /// Allowed; `audit_topic` is set (possibly to the derived topic) when an AUDIT row applies.
    Allow { audit: Option<String> },
    /// Refused: no applicable row, a DROP, or no ACCEPT. `topic` for the denied activity.
    Deny { topic: String },
}

impl Permissions {
    pub fn new(rows: Vec<Permission>) -> Self {
        let mut by_role = foldhash::HashMap::<String, Vec<Compiled>>::default();
        for row in rows {
            let action = match row.action.as_str() {
                "ACCEPT" => Action::Accept,
                "DROP" => Action::Drop,
                "AUDIT" => Action::Audit,
                _ => Action::Other,
            };
            by_role.entry(row.role).or_default().push(Compiled {
                verb: Verb::parse(&row.verb),
                path: Prefix::new(&row.path),
                action,
                topic: row.topic,
            });
        }
        Self {
            by_role: (by_role.into_iter())
                .map(|(role, rows)| (role, RoleRows::new(rows)))
                .collect(),
        }
    }

    /// Barong's rule: applicable = same role, verb equal or ALL, path a plain prefix.
    /// Deny when none applies, any is DROP, or none is ACCEPT. The topic of a deny is the first
    /// applicable row's that has one; of an audit, the first AUDIT row's.
    pub fn evaluate(&self, role: &str, method: &Method, path: &str) -> PermissionDecision {
        // One pass over the role's rows: this runs on every authenticated decision.
        let Some(rows) = self.by_role.get(role) else {
            return PermissionDecision::Deny {
                topic: derived_topic(path),
            };
        };
        let verb = VerbSet::of_method(method);
        let (mut drop, mut accept) = (false, false);
        let mut topic: Option<&str> = None;
        let mut audit: Option<Option<&str>> = None;
        let keys = rows.verbs.iter().zip(rows.keys.iter());
        let applicable = (keys.zip(rows.rows.iter()))
            .filter(|((verbs, key), _)| verbs.meets(verb) && key.admits(path))
            .map(|(_, row)| row)
            .filter(|row| row.verb.allows(method) && row.path.matches(path));
        for row in applicable {
            if topic.is_none() {
                topic = row.topic.as_deref();
            }
            match row.action {
                Action::Drop => drop = true,
                Action::Accept => accept = true,
                Action::Audit if audit.is_none() => audit = Some(row.topic.as_deref()),
                Action::Audit | Action::Other => {}
            }
        }
        let or_derived =
            |topic: Option<&str>| topic.map_or_else(|| derived_topic(path), str::to_owned);
        if drop || !accept {
            return PermissionDecision::Deny {
                topic: or_derived(topic),
            };
        }
        PermissionDecision::Allow {
            audit: audit.map(or_derived),
        }
    }
}

/// The first path segment after `admin/`, else `general`.
fn derived_topic(path: &str) -> String {
    path.split_once("admin/")
        .and_then(|(_, rest)| rest.split('/').next())
        .filter(|segment| !segment.is_empty())
        .unwrap_or("general")
        .to_owned()
}

/// Restriction categories in Barong's evaluation order.
const CATEGORIES: [&str; 4] = ["whitelist", "maintenance", "blacklist", "blocklogin"];

/// Enabled restrictions, grouped by category, with subnets pre-parsed.
#[derive(Debug, Default)]
pub struct Restrictions {
    by_category: HashMap<&'static str, Vec<CompiledRestriction>>,
}

#[derive(Debug)]
struct CompiledRestriction {
    row: Restriction,
    subnet: Option<IpNet>,
}

/// Where a client is, for country/continent scopes (names as GeoIP gives them).
#[derive(Debug, Default, Clone)]
pub struct Location {
    pub country: Option<String>,
    pub continent: Option<String>,
}

/// The restriction outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestrictionDecision {
    Pass,
    /// Deny with the row's status code and `authz.restrict.<category>`.
    Deny {
        category: &'static str,
        code: u16,
    },
}

/// The exact path blocklogin restrictions apply to.
const LOGIN_PATH: &str = "api/v2/barong/identity/sessions";

impl Restrictions {
    pub fn new(rows: Vec<Restriction>) -> Self {
        let mut by_category: HashMap<&'static str, Vec<CompiledRestriction>> = HashMap::new();
        for row in rows.into_iter().filter(|r| r.state == "enabled") {
            let Some(category) = CATEGORIES.iter().find(|c| **c == row.category) else {
                continue;
            };
            let subnet = (row.scope == "ip_subnet")
                .then(|| row.value.parse::<IpNet>().ok())
                .flatten();
            by_category
                .entry(category)
                .or_default()
                .push(CompiledRestriction { row, subnet });
        }
        Self { by_category }
    }

    /// True when no restriction is enabled (the common case: skip the GeoIP lookup).
    pub fn is_empty(&self) -> bool {
        self.by_category.is_empty()
    }

    /// True when a country or continent rule exists (only then is GeoIP consulted).
    pub fn needs_location(&self) -> bool {
        self.by_category
            .values()
            .flatten()
            .any(|r| r.row.scope == "country" || r.row.scope == "continent")
    }

    /// Barong's order: whitelist (a match ends the check), maintenance, blacklist, blocklogin
    /// (only for the login path); inside a category by scope all, ip, ip_subnet, continent,
    /// country.
    pub fn evaluate(&self, ip: IpAddr, location: &Location, path: &str) -> RestrictionDecision {
        for category in CATEGORIES {
            let Some(rows) = self.by_category.get(category) else {
                continue;
            };
            let Some(row) = first_match(rows, ip, location) else {
                continue;
            };
            match category {
                "whitelist" => return RestrictionDecision::Pass,
                "blocklogin" if !path.eq_ignore_ascii_case(LOGIN_PATH) => continue,
                _ => {
                    return RestrictionDecision::Deny {
                        category,
                        code: deny_code(row),
                    };
                }
            }
        }
        RestrictionDecision::Pass
    }
}

/// The row's status when it is one that denies (4xx); anything else, a row written before codes
/// were checked or by hand, denies with its category's default rather than answering 2xx (allow)
/// or 3xx for a restricted client.
fn deny_code(row: &Restriction) -> u16 {
    u16::try_from(row.code)
        .ok()
        .filter(|code| crate::domain::is_restriction_code(i64::from(*code)))
        .or_else(|| u16::try_from(default_restriction_code(&row.category, &row.scope)).ok())
        .unwrap_or(401)
}

fn first_match<'a>(
    rows: &'a [CompiledRestriction],
    ip: IpAddr,
    location: &Location,
) -> Option<&'a Restriction> {
    let ip_text = ip.to_string();
    let same = |value: &str, name: &Option<String>| {
        name.as_deref()
            .is_some_and(|n| n.eq_ignore_ascii_case(value))
    };
    let scope_matches = |scope: &str, r: &CompiledRestriction| match scope {
        "all" => true,
        "ip" => r.row.value == ip_text,
        "ip_subnet" => r.subnet.is_some_and(|net| net.contains(&ip)),
        "continent" => same(&r.row.value, &location.continent),
        "country" => same(&r.row.value, &location.country),
        _ => false,
    };
    ["all", "ip", "ip_subnet", "continent", "country"]
        .into_iter()
        .find_map(|scope| {
            rows.iter()
                .find(|r| r.row.scope == scope && scope_matches(scope, r))
        })
        .map(|r| &r.row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn a_rows_verb_set_admits_every_verb_the_row_allows() {
        let verbs = [
            "ALL", "GET", "get", "POST", "PATCH", "TRACE", "PURGE", "", "all",
        ];
        let mut methods: Vec<Method> = VerbSet::STANDARD.to_vec();
        for extension in [
            "PURGE",
            "get",
            "ALL",
            "MKCOL",
            "A-VERY-LONG-EXTENSION-METHOD",
        ] {
            methods.push(Method::from_bytes(extension.as_bytes()).expect("method"));
        }
        for verb in verbs {
            let parsed = Verb::parse(verb);
            let set = VerbSet::of_row(&parsed);
            for method in &methods {
                if parsed.allows(method) {
                    assert!(set.meets(VerbSet::of_method(method)), "{verb} {method}");
                }
            }
        }
        // Standard verbs are told apart without reading the row.
        let get = VerbSet::of_row(&Verb::parse("GET"));
        assert!(!get.meets(VerbSet::of_method(&Method::POST)));
    }

    fn permission(role: &str, verb: &str, path: &str, action: &str) -> Permission {
        Permission {
            id: 0,
            role: role.into(),
            verb: verb.into(),
            path: path.into(),
            action: action.into(),
            topic: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn accept_drop_audit_combinations() {
        let p = Permissions::new(vec![
            permission("member", "ALL", "api/v2/peatio", "ACCEPT"),
            permission("member", "GET", "api/v2/peatio/secret", "DROP"),
            permission("member", "POST", "api/v2/", "AUDIT"),
            permission("admin", "ALL", "api/v2", "ACCEPT"),
            permission("admin", "PUT", "api/v2/barong/admin/users", "AUDIT"),
            permission("auditor", "GET", "api/v2/x", "AUDIT"),
        ]);
        let get = Method::GET;
        assert_eq!(
            p.evaluate("member", &get, "api/v2/peatio/orders"),
            PermissionDecision::Allow { audit: None }
        );
        assert!(matches!(
            p.evaluate("member", &get, "api/v2/peatio/secret/x"),
            PermissionDecision::Deny { .. }
        ));
        assert_eq!(
            p.evaluate("member", &Method::POST, "api/v2/peatio/orders"),
            PermissionDecision::Allow {
                audit: Some("general".into())
            }
        );
        assert_eq!(
            p.evaluate("admin", &Method::PUT, "api/v2/barong/admin/users/role"),
            PermissionDecision::Allow {
                audit: Some("users".into())
            }
        );
        assert!(matches!(
            p.evaluate("member", &get, "api/v2/barong/resource"),
            PermissionDecision::Deny { .. }
        ));
        assert!(matches!(
            p.evaluate("nobody", &get, "api/v2/peatio"),
            PermissionDecision::Deny { .. }
        ));
        // AUDIT alone is not an ACCEPT.
        assert!(matches!(
            p.evaluate("auditor", &get, "api/v2/x"),
            PermissionDecision::Deny { .. }
        ));
        // A leading slash never matches.
        let slash = Permissions::new(vec![permission("member", "ALL", "/api/v2", "ACCEPT")]);
        assert!(matches!(
            slash.evaluate("member", &get, "api/v2/x"),
            PermissionDecision::Deny { .. }
        ));
    }

    fn restriction(category: &str, scope: &str, value: &str, code: i32) -> Restriction {
        Restriction {
            id: 0,
            category: category.into(),
            scope: scope.into(),
            value: value.into(),
            code,
            state: "enabled".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn restriction_order_and_scopes() {
        let ip: IpAddr = "203.0.113.7".parse().expect("ip");
        let here = Location {
            country: Some("Japan".into()),
            continent: Some("Asia".into()),
        };
        let r = Restrictions::new(vec![
            restriction("blacklist", "ip_subnet", "203.0.113.0/24", 403),
            restriction("maintenance", "country", "japan", 471),
        ]);
        assert_eq!(
            r.evaluate(ip, &here, "x"),
            RestrictionDecision::Deny {
                category: "maintenance",
                code: 471
            }
        );
        let white = Restrictions::new(vec![
            restriction("whitelist", "ip", "203.0.113.7", 401),
            restriction("maintenance", "all", "all", 471),
        ]);
        assert_eq!(white.evaluate(ip, &here, "x"), RestrictionDecision::Pass);
        let login = Restrictions::new(vec![restriction("blocklogin", "continent", "Asia", 423)]);
        assert_eq!(
            login.evaluate(ip, &here, "api/v2/x"),
            RestrictionDecision::Pass
        );
        assert_eq!(
            login.evaluate(ip, &here, LOGIN_PATH),
            RestrictionDecision::Deny {
                category: "blocklogin",
                code: 423
            }
        );
        let mut disabled = restriction("maintenance", "all", "all", 471);
        disabled.state = "disabled".into();
        assert!(Restrictions::new(vec![disabled]).is_empty());
        let elsewhere = Location::default();
        let countries = Restrictions::new(vec![restriction("blacklist", "country", "Japan", 435)]);
        assert_eq!(
            countries.evaluate(ip, &elsewhere, "x"),
            RestrictionDecision::Pass
        );
    }
}
