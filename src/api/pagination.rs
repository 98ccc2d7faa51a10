//! Barong's pagination: `page` (default 1) and `limit` (default 100, 1..=100)
//! with un-prefixed error keys, and the api-pagination headers `Total`, `Per-Page`, `Page` and
//! `Link` on the answer. Shared by every paginated endpoint.

use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use serde_json::Value;

use super::params::Params;

/// The requested page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub limit: i64,
}

impl Page {
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.limit)
    }
}

/// Grape's Integer coercion: integers, and strings of decimal digits (with a sign).
pub fn coerce_integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let t = s.trim();
            let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                t.parse().ok()
            }
        }
        _ => None,
    }
}

/// Reads `page` and `limit`, pushing Barong's keys into `errors`.
pub fn page_params(params: &Params, errors: &mut Vec<String>) -> Page {
    let mut push = |key: &str| {
        if !errors.iter().any(|e| e == key) {
            errors.push(key.to_owned());
        }
    };
    let page = match params.0.get("page") {
        None | Some(Value::Null) => 1,
        Some(value) => match coerce_integer(value) {
            Some(p) if p > 0 => p,
            Some(_) => {
                push("non_positive_page");
                1
            }
            None => {
                push("non_integer_page");
                1
            }
        },
    };
    let limit = match params.0.get("limit") {
        None | Some(Value::Null) => 100,
        Some(value) => match coerce_integer(value) {
            Some(l) if (1..=100).contains(&l) => l,
            Some(_) => {
                push("invalid_limit");
                100
            }
            None => {
                push("non_integer_limit");
                100
            }
        },
    };
    Page { page, limit }
}

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

#[cfg(test)]
mod tests {
    use super::*;
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
