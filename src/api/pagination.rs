//! Barong's pagination: `page` (default 1) and `limit` (default 100, 1..=100)
//! with un-prefixed error keys, and the api-pagination headers `Total`, `Per-Page`, `Page` and
//! `Link` on the answer. Shared by every paginated endpoint.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use serde_json::Value;

pub use super::params::{Page, coerce_integer, page_params};

/// `Total`, `Per-Page`, `Page` and (when there is more than one page) `Link`.
pub fn headers(uri: &Uri, page: Page, total: i64) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    };
    set("total", total.to_string());
    set("per-page", page.limit.to_string());
    set("page", page.page.to_string());
    let last = ((total + page.limit - 1) / page.limit).max(1);
    if last > 1 {
        let mut query: Vec<(String, String)> = uri
            .query()
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        query.retain(|(k, _)| k != "page");
        let link = |p: i64, rel: &str| {
            let mut pairs = query.clone();
            pairs.push(("page".into(), p.to_string()));
            pairs.sort_by(|a, b| a.0.cmp(&b.0));
            let encoded = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish();
            format!("<{}?{encoded}>; rel=\"{rel}\"", uri.path())
        };
        let mut links = vec![link(1, "first")];
        if page.page > 1 {
            links.push(link(page.page - 1, "prev"));
        }
        links.push(link(last, "last"));
        if page.page < last {
            links.push(link(page.page + 1, "next"));
        }
        set("link", links.join(", "));
    }
    headers
}

/// One page of sessions with the pagination headers.
pub(crate) fn page_response(uri: &Uri, page: Page, rows: Vec<Value>) -> axum::response::Response {
    let total = rows.len() as i64;
    let shown: Vec<Value> = rows
        .into_iter()
        .skip(usize::try_from(page.offset()).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(0))
        .collect();
    axum::response::IntoResponse::into_response((headers(uri, page, total), axum::Json(shown)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::params::Params;
    use serde_json::json;

    fn params(value: Value) -> Params {
        Params(value.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn keys_and_defaults() {
        let mut errors = Vec::new();
        assert_eq!(
            page_params(&params(json!({})), &mut errors),
            Page {
                page: 1,
                limit: 100
            }
        );
        page_params(&params(json!({"page": "x", "limit": "101"})), &mut errors);
        page_params(&params(json!({"page": 0, "limit": "a"})), &mut errors);
        assert_eq!(
            errors,
            [
                "non_integer_page",
                "invalid_limit",
                "non_positive_page",
                "non_integer_limit"
            ]
        );
    }

    #[test]
    fn link_header() {
        let uri: Uri = "/api/v2/resource/api_keys?limit=1&page=2&b=c"
            .parse()
            .expect("uri");
        let h = headers(&uri, Page { page: 2, limit: 1 }, 3);
        assert_eq!(h["total"], "3");
        assert_eq!(
            h["link"],
            "</api/v2/resource/api_keys?b=c&limit=1&page=1>; rel=\"first\", \
             </api/v2/resource/api_keys?b=c&limit=1&page=1>; rel=\"prev\", \
             </api/v2/resource/api_keys?b=c&limit=1&page=3>; rel=\"last\", \
             </api/v2/resource/api_keys?b=c&limit=1&page=3>; rel=\"next\""
        );
        assert!(
            headers(&uri, Page { page: 1, limit: 5 }, 3)
                .get("link")
                .is_none()
        );
    }
}
