//! The WHERE clauses of the admin listings, built once for both backends: each backend says
//! how it writes a placeholder for a text, an integer or an epoch-seconds time, and binds
//! the returned arguments in order.

use crate::domain::{ActivityFilter, LabelFilter, USER_ORDER_COLUMNS, UserFilter};

/// A bound value of a built query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Arg {
    Text(String),
    Int(i64),
    /// Epoch seconds, compared with a timestamp column.
    Time(i64),
}

/// Writes the placeholder of the `n`-th (1-based) argument.
pub(super) type Placeholder = fn(usize, &Arg) -> String;

/// The placeholder of the shared SQL (`store::sql`): `$n`, whatever the argument.
pub(super) fn numbered(n: usize, _: &Arg) -> String {
    format!("${n}")
}

/// A listing's page after its filter's `args`: the `LIMIT $n OFFSET $m` clause and the
/// arguments with the page appended. The page is an argument, not text, so one prepared
/// statement serves every page of a filter.
pub(super) fn page(
    args: &[super::sql::Value],
    limit: i64,
    offset: i64,
) -> (String, Vec<super::sql::Value>) {
    let clause = format!("LIMIT ${} OFFSET ${}", args.len() + 1, args.len() + 2);
    let args = args
        .iter()
        .cloned()
        .chain([limit.into(), offset.into()])
        .collect();
    (clause, args)
}

impl From<Arg> for super::sql::Value {
    fn from(arg: Arg) -> Self {
        match arg {
            Arg::Text(t) => Self::Text(t),
            Arg::Int(i) => Self::Int(i),
            Arg::Time(secs) => Self::epoch(secs),
        }
    }
}

struct Builder {
    ph: Placeholder,
    clauses: Vec<String>,
    args: Vec<Arg>,
}

impl Builder {
    fn new(ph: Placeholder) -> Self {
        Self {
            ph,
            clauses: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Adds `<template>` with `{}` replaced by the next placeholder, when `arg` is given.
    fn add(&mut self, template: &str, arg: Option<Arg>) {
        if let Some(arg) = arg {
            let placeholder = (self.ph)(self.args.len() + 1, &arg);
            self.clauses.push(template.replace("{}", &placeholder));
            self.args.push(arg);
        }
    }

    fn finish(self) -> (String, Vec<Arg>) {
        let clause = if self.clauses.is_empty() {
            "TRUE".to_owned()
        } else {
            self.clauses.join(" AND ")
        };
        (clause, self.args)
    }
}

fn text(value: &Option<String>) -> Option<Arg> {
    value.clone().map(Arg::Text)
}

/// The condition on table `users` for `GET /admin/users`.
pub(super) fn users_where(filter: &UserFilter, ph: Placeholder) -> (String, Vec<Arg>) {
    let mut b = Builder::new(ph);
    b.add("users.uid = {}", text(&filter.uid));
    b.add("users.email = {}", text(&filter.email));
    b.add("users.role = {}", text(&filter.role));
    b.add("users.level = {}", filter.level.map(Arg::Int));
    b.add("users.state = {}", text(&filter.state));
    b.add(
        "EXISTS (SELECT 1 FROM profiles p WHERE p.user_id = users.id AND p.country = {})",
        text(&filter.country),
    );
    let column = if filter.range_updated {
        "users.updated_at"
    } else {
        "users.created_at"
    };
    b.add(&format!("{column} >= {{}}"), filter.from.map(Arg::Time));
    b.add(&format!("{column} <= {{}}"), filter.to.map(Arg::Time));
    b.finish()
}

/// The condition on `labels l` for the users-by-label listings.
pub(super) fn labels_where(filter: &LabelFilter, ph: Placeholder) -> (String, Vec<Arg>) {
    let mut b = Builder::new(ph);
    b.add("l.key = {}", Some(Arg::Text(filter.key.clone())));
    b.add("l.value = {}", text(&filter.value));
    b.add("l.scope = {}", text(&filter.scope));
    let column = if filter.range_updated {
        "l.updated_at"
    } else {
        "l.created_at"
    };
    b.add(&format!("{column} >= {{}}"), filter.from.map(Arg::Time));
    b.add(&format!("{column} <= {{}}"), filter.to.map(Arg::Time));
    b.finish()
}

/// `ORDER BY` of the users listing: a known column (else `id`), then `id` for a stable order.
pub(super) fn users_order(filter: &UserFilter) -> String {
    let column = USER_ORDER_COLUMNS
        .iter()
        .find(|c| **c == filter.order_by)
        .copied()
        .unwrap_or("id");
    let direction = if filter.descending { "DESC" } else { "ASC" };
    format!("users.{column} {direction}, users.id {direction}")
}

/// The condition on `activities a JOIN users u` for the activity listings.
pub(super) fn activities_where(filter: &ActivityFilter, ph: Placeholder) -> (String, Vec<Arg>) {
    let mut b = Builder::new(ph);
    b.add("a.category = {}", Some(Arg::Text(filter.category.clone())));
    b.add("a.topic = {}", text(&filter.topic));
    b.add("a.action = {}", text(&filter.action));
    b.add("u.uid = {}", text(&filter.uid));
    b.add("u.email = {}", text(&filter.email));
    b.add("a.target_uid = {}", text(&filter.target_uid));
    b.add("a.created_at >= {}", filter.from.map(Arg::Time));
    b.add("a.created_at <= {}", filter.to.map(Arg::Time));
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: usize, _: &Arg) -> String {
        format!("${n}")
    }

    #[test]
    fn only_given_filters_with_numbered_placeholders() {
        let filter = UserFilter {
            email: Some("a@b.c".into()),
            level: Some(2),
            to: Some(10),
            range_updated: true,
            order_by: "email; DROP".into(),
            ..UserFilter::default()
        };
        let (clause, args) = users_where(&filter, numbered);
        assert_eq!(
            clause,
            "users.email = $1 AND users.level = $2 AND users.updated_at <= $3"
        );
        assert_eq!(
            args,
            [Arg::Text("a@b.c".into()), Arg::Int(2), Arg::Time(10)]
        );
        assert_eq!(users_order(&filter), "users.id ASC, users.id ASC");
        let (clause, _) = users_where(&UserFilter::default(), numbered);
        assert_eq!(clause, "TRUE");
    }
}
