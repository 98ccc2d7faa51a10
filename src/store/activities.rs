//! The activity log.

use async_trait::async_trait;

use super::sql::{Database, Dialect, Exec, Row, Value, all, args};
use super::{StoreResult, admin_sql};
use crate::domain::{Activity, ActivityFilter, NewActivity};

#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Inserts a batch of activities in one transaction, skipping invalid rows (Barong drops
    /// them silently) and rows whose `target_uid` names no user; returns how many were stored.
    async fn insert_activities(&self, activities: &[NewActivity]) -> StoreResult<usize>;

    /// A user's activities, newest first (filters are applied by the caller's query builder).
    async fn list_user_activities(&self, user_id: i64) -> StoreResult<Vec<Activity>>;

    /// One page of activities matching `filter`, newest first, with the total count.
    async fn list_activities(
        &self,
        filter: &ActivityFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Activity>, i64)>;

    /// Activities `topic`/`action`/`result` of category `user` counted per UTC day
    /// (`YYYY-MM-DD`), oldest day first.
    async fn activity_counts_per_day(
        &self,
        topic: &str,
        action: &str,
        result: &str,
    ) -> StoreResult<Vec<(String, i64)>>;
}

fn activity_from_row(row: &Row) -> StoreResult<Activity> {
    Ok(Activity {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        target_uid: row.get("target_uid")?,
        category: row.get("category")?,
        user_ip: row.get("user_ip")?,
        user_ip_country: row.get("user_ip_country")?,
        user_agent: row.get("user_agent")?,
        topic: row.get("topic")?,
        action: row.get("action")?,
        result: row.get("result")?,
        data: row.get("data")?,
        created_at: row.get("created_at")?,
    })
}

#[async_trait]
impl<S: Database> ActivityStore for S {
    async fn insert_activities(&self, activities: &[NewActivity]) -> StoreResult<usize> {
        let valid = crate::domain::activity::storable(activities);
        if valid.is_empty() {
            return Ok(0);
        }
        let mut tx = self.begin().await?;
        let mut stored = 0;
        for a in valid {
            stored += tx
                .execute(
                    "INSERT INTO activities (user_id, target_uid, category, user_ip,
                         user_ip_country, user_agent, topic, action, result, data, created_at)
                     SELECT CAST($1 AS BIGINT), CAST($2 AS TEXT), CAST($3 AS TEXT),
                         CAST($4 AS TEXT), CAST($5 AS TEXT), CAST($6 AS TEXT), CAST($7 AS TEXT),
                         CAST($8 AS TEXT), CAST($9 AS TEXT), CAST($10 AS TEXT), now()
                     WHERE CAST($2 AS TEXT) IS NULL OR CAST($2 AS TEXT) = ''
                        OR EXISTS (SELECT 1 FROM users WHERE uid = CAST($2 AS TEXT))",
                    args![
                        a.user_id,
                        &a.target_uid,
                        &a.category,
                        &a.user_ip,
                        &a.user_ip_country,
                        &a.user_agent,
                        &a.topic,
                        &a.action,
                        &a.result,
                        &a.data,
                    ],
                )
                .await? as usize;
        }
        tx.commit().await?;
        Ok(stored)
    }

    async fn list_user_activities(&self, user_id: i64) -> StoreResult<Vec<Activity>> {
        let mut c = self.conn().await?;
        let rows = c
            .query(
                "SELECT * FROM activities WHERE user_id = $1 ORDER BY id DESC",
                args![user_id],
            )
            .await?;
        all(rows, activity_from_row)
    }

    async fn list_activities(
        &self,
        filter: &ActivityFilter,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<Activity>, i64)> {
        let (clause, args) = admin_sql::activities_where(filter, admin_sql::numbered);
        let args: Vec<Value> = args.into_iter().map(Value::from).collect();
        let from = format!("activities a JOIN users u ON u.id = a.user_id WHERE {clause}");
        let mut c = self.conn().await?;
        let total = c
            .scalar(&format!("SELECT COUNT(*) FROM {from}"), &args)
            .await?;
        let (page, page_args) = admin_sql::page(&args, limit, offset);
        let rows = c
            .query(
                &format!("SELECT a.* FROM {from} ORDER BY a.id DESC {page}"),
                &page_args,
            )
            .await?;
        Ok((all(rows, activity_from_row)?, total))
    }

    async fn activity_counts_per_day(
        &self,
        topic: &str,
        action: &str,
        result: &str,
    ) -> StoreResult<Vec<(String, i64)>> {
        let day = Dialect::day(S::DIALECT, "created_at");
        let mut c = self.conn().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT {day} AS day, COUNT(*) FROM activities
                     WHERE category = 'user' AND topic = $1 AND action = $2 AND result = $3
                     GROUP BY day ORDER BY day"
                ),
                args![topic, action, result],
            )
            .await?;
        all(rows, |r| Ok((r.at(0)?, r.at(1)?)))
    }
}
