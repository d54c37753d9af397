//! History queries: newest first, paged by the global write sequence.

use sqlx::QueryBuilder;

use super::{Store, StoreResult, dispatch};

#[derive(Debug, Clone)]
pub enum HistoryScope {
    System,
    Type(String),
    Instance(String, String),
}

#[derive(Debug, Clone)]
pub struct HistoryQuery {
    pub scope: HistoryScope,
    /// Only versions with `last_updated >= since` (microseconds).
    pub since: Option<i64>,
    /// Only versions written before this sequence number (the paging cursor).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryEntry {
    pub seq: i64,
    pub resource_type: String,
    pub id: String,
    pub version_id: i64,
    pub last_updated: i64,
    pub deleted: bool,
    pub method: String,
    pub body: Vec<u8>,
}

impl Store {
    pub async fn history(&self, query: &HistoryQuery) -> StoreResult<Vec<HistoryEntry>> {
        dispatch!(self, pool => {
            let mut sql = QueryBuilder::new(
                "SELECT seq, resource_type, id, version_id, last_updated, deleted, method, body \
                 FROM resource_versions WHERE 1 = 1",
            );
            match &query.scope {
                HistoryScope::System => {}
                HistoryScope::Type(resource_type) => {
                    sql.push(" AND resource_type = ").push_bind(resource_type.as_str());
                }
                HistoryScope::Instance(resource_type, id) => {
                    sql.push(" AND resource_type = ").push_bind(resource_type.as_str());
                    sql.push(" AND id = ").push_bind(id.as_str());
                }
            }
            if let Some(since) = query.since {
                sql.push(" AND last_updated >= ").push_bind(since);
            }
            if let Some(before) = query.before_seq {
                sql.push(" AND seq < ").push_bind(before);
            }
            sql.push(" ORDER BY seq DESC LIMIT ").push_bind(query.limit);
            Ok(sql.build_query_as().fetch_all(pool).await?)
        })
    }
}
