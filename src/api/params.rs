//! Request parameters as Grape sees them: the query string merged with a JSON, form-urlencoded
//! or multipart body into one map, then validated per endpoint with Barong's generated error
//! keys (`<module>.<resource>.missing_<param>`, `..._empty_<param>`, `invalid`).

use axum::body::Body;
use axum::extract::{FromRef, FromRequest, Request};
use axum::http::header;
use serde_json::{Map, Value};

use super::ApiState;
use super::error::ApiError;
use crate::service::error::Key;

/// The merged parameters of one request.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Map<String, Value>);

impl<S> FromRequest<S> for Params
where
    S: Send + Sync,
    ApiState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = ApiState::from_ref(state).max_body_size;
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let query = request.uri().query().map(str::to_owned);
        Params::parse(&content_type, query.as_deref(), request.into_body(), limit).await
    }
}

impl Params {
    /// Merges `query` and the body as the extractor does: the one entry point the parameter
    /// parser has (also driven by the fuzz target `fuzz/fuzz_targets/params.rs`).
    pub async fn parse(
        content_type: &str,
        query: Option<&str>,
        body: Body,
        limit: usize,
    ) -> Result<Self, ApiError> {
        let mut params = Map::new();
        if let Some(query) = query {
            merge_pairs(&mut params, form_urlencoded::parse(query.as_bytes()));
        }
        // Matched case-insensitively, but the multipart boundary is case-sensitive: multer gets
        // the header as sent (browsers use mixed-case boundaries).
        let media_type = content_type.to_ascii_lowercase();
        if media_type.starts_with("multipart/form-data") {
            read_multipart(&mut params, body, content_type, limit).await?;
        } else {
            let bytes = read_body(body, limit).await?;
            if media_type.starts_with("application/json") && !bytes.is_empty() {
                merge_json(&mut params, &bytes)?;
            } else if media_type.starts_with("application/x-www-form-urlencoded") {
                merge_pairs(&mut params, form_urlencoded::parse(&bytes));
            }
        }
        Ok(Params(params))
    }
}

async fn read_body(body: Body, limit: usize) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| body_too_large())
}

fn body_too_large() -> ApiError {
    ApiError::from(Key::RequestBodyTooLarge)
}

fn malformed_body() -> ApiError {
    ApiError::from(Key::RequestMalformedBody)
}

/// A JSON object body merges its keys; any other JSON value is refused as malformed.
fn merge_json(params: &mut Map<String, Value>, bytes: &[u8]) -> Result<(), ApiError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(object)) => {
            params.extend(object);
            Ok(())
        }
        _ => Err(malformed_body()),
    }
}

/// Form pairs: `key[]` collects an array, `key[sub]` an object, as Rack parses them.
fn merge_pairs<'a>(
    params: &mut Map<String, Value>,
    pairs: impl Iterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
) {
    for (key, value) in pairs {
        insert_field(params, &key, Value::String(value.into_owned()));
    }
}

fn insert_field(params: &mut Map<String, Value>, key: &str, value: Value) {
    if let Some(name) = key.strip_suffix("[]") {
        let entry = params
            .entry(name.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
        match entry {
            Value::Array(items) => items.push(value),
            other => *other = Value::Array(vec![value]),
        }
    } else if let Some((name, rest)) = key.split_once('[')
        && let Some(sub) = rest.strip_suffix(']')
        && !sub.is_empty()
    {
        let entry = params
            .entry(name.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        if let Value::Object(object) = entry {
            object.insert(sub.to_owned(), value);
        }
    } else {
        params.insert(key.to_owned(), value);
    }
}

/// Multipart text fields become strings; file fields become `{"filename", "content_type",
/// "size"}` descriptions (uploads are streamed to storage by the endpoints that take them).
async fn read_multipart(
    params: &mut Map<String, Value>,
    body: Body,
    content_type: &str,
    limit: usize,
) -> Result<(), ApiError> {
    let boundary = multer::parse_boundary(content_type).map_err(|_| malformed_body())?;
    let constraints =
        multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limit as u64));
    let mut multipart =
        multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => return Ok(()),
            Err(multer::Error::StreamSizeExceeded { .. }) => return Err(body_too_large()),
            Err(_) => return Err(malformed_body()),
        };
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        let file_name = field.file_name().map(str::to_owned);
        let mime = field.content_type().map(|m| m.to_string());
        let bytes = field.bytes().await.map_err(|e| match e {
            multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
                body_too_large()
            }
            _ => malformed_body(),
        })?;
        let value = match file_name {
            Some(filename) => serde_json::json!({
                "filename": filename,
                "content_type": mime,
                "size": bytes.len(),
            }),
            None => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        };
        insert_field(params, &name, value);
    }
}

/// A request whose multipart body is read as it arrives (uploads): text fields go into the
/// parameters, file fields are handed out one at a time to be streamed to storage, so a file is
/// never held whole in memory. A request that is not multipart is read whole (it is small:
/// `max_body_size`) and simply has no files.
pub struct StreamingForm {
    params: Map<String, Value>,
    multipart: Option<multer::Multipart<'static>>,
    /// Largest text field, in bytes.
    text_limit: usize,
}

/// One file field of a [`StreamingForm`], read chunk by chunk.
pub struct FileField {
    /// The field name (`upload[]`).
    pub name: String,
    /// The client's file name (only its extension is looked at).
    pub filename: String,
    field: multer::Field<'static>,
}

impl FileField {
    /// The next chunk of the file, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<bytes::Bytes>, ApiError> {
        self.field.chunk().await.map_err(multipart_error)
    }
}

fn multipart_error(error: multer::Error) -> ApiError {
    match error {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            body_too_large()
        }
        _ => malformed_body(),
    }
}

impl StreamingForm {
    /// Starts reading `request`; a multipart body may be up to `stream_limit` bytes in all,
    /// anything else up to `text_limit`.
    pub async fn new(
        request: Request,
        stream_limit: u64,
        text_limit: usize,
    ) -> Result<Self, ApiError> {
        let mut params = Map::new();
        if let Some(query) = request.uri().query() {
            merge_pairs(&mut params, form_urlencoded::parse(query.as_bytes()));
        }
        // The boundary is case-sensitive: only the media type is compared lower-cased.
        let raw_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let content_type = raw_type.to_ascii_lowercase();
        let body = request.into_body();
        if !content_type.starts_with("multipart/form-data") {
            let bytes = read_body(body, text_limit).await?;
            if content_type.starts_with("application/json") && !bytes.is_empty() {
                merge_json(&mut params, &bytes)?;
            } else if content_type.starts_with("application/x-www-form-urlencoded") {
                merge_pairs(&mut params, form_urlencoded::parse(&bytes));
            }
            return Ok(Self {
                params,
                multipart: None,
                text_limit,
            });
        }
        let boundary = multer::parse_boundary(&raw_type).map_err(|_| malformed_body())?;
        let constraints = multer::Constraints::new()
            .size_limit(multer::SizeLimit::new().whole_stream(stream_limit));
        let multipart =
            multer::Multipart::with_constraints(body.into_data_stream(), boundary, constraints);
        Ok(Self {
            params,
            multipart: Some(multipart),
            text_limit,
        })
    }

    /// The next file field; text fields met on the way are collected into the parameters.
    /// The previous file field must have been read to its end (or dropped).
    pub async fn next_file(&mut self) -> Result<Option<FileField>, ApiError> {
        let Some(multipart) = self.multipart.as_mut() else {
            return Ok(None);
        };
        loop {
            let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? else {
                return Ok(None);
            };
            let Some(name) = field.name().map(str::to_owned) else {
                continue;
            };
            if let Some(filename) = field.file_name().map(str::to_owned) {
                return Ok(Some(FileField {
                    name,
                    filename,
                    field,
                }));
            }
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                if text.len() + chunk.len() > self.text_limit {
                    return Err(body_too_large());
                }
                text.extend_from_slice(&chunk);
            }
            let value = Value::String(String::from_utf8_lossy(&text).into_owned());
            insert_field(&mut self.params, &name, value);
        }
    }

    /// The parameters read so far (all of them once [`StreamingForm::next_file`] said `None`).
    pub fn into_params(self) -> Params {
        Params(self.params)
    }
}

/// Validates declared parameters in declaration order, collecting Barong's keys.
pub struct Validator<'a> {
    scope: &'a str,
    params: &'a Params,
    errors: Vec<String>,
}

impl<'a> Validator<'a> {
    /// `scope` is `<module>.<resource>`, e.g. `identity.user`.
    pub fn new(scope: &'a str, params: &'a Params) -> Self {
        Self {
            scope,
            params,
            errors: Vec::new(),
        }
    }

    fn push(&mut self, key: String) {
        if !self.errors.contains(&key) {
            self.errors.push(key);
        }
    }

    /// A required parameter of any type; only its presence is checked.
    pub fn required_any(&mut self, name: &str) -> Option<&'a Value> {
        let value = self.params.0.get(name);
        if value.is_none() {
            self.push(format!("{}.missing_{name}", self.scope));
        }
        value
    }

    /// A required, not-blank string: missing gives `missing_` and `empty_`, blank gives `empty_`,
    /// a non-scalar gives `invalid`.
    pub fn required_string(&mut self, name: &str) -> Option<String> {
        let raw = self.params.0.get(name);
        if raw.is_none() {
            self.push(format!("{}.missing_{name}", self.scope));
        }
        self.present_string(name, raw)
    }

    /// A required, not-blank string whose missing key is declared explicitly (Grape's
    /// `presence: { message: ... }`); blank still gives `<scope>.empty_<param>`.
    pub fn required_string_as(&mut self, name: &str, missing_key: &str) -> Option<String> {
        let raw = self.params.0.get(name);
        if raw.is_none() {
            self.push(missing_key.to_owned());
        }
        self.present_string(name, raw)
    }

    /// An optional parameter typed `[String, Hash]`: strings, numbers and booleans come back as
    /// strings, objects as they are; anything else gives `invalid_key`.
    pub fn optional_string_or_object(&mut self, name: &str, invalid_key: &str) -> Option<Value> {
        match self.params.0.get(name)? {
            Value::Null => None,
            Value::Object(object) => Some(Value::Object(object.clone())),
            value => match coerce_string(value) {
                Some(text) => Some(Value::String(text)),
                None => {
                    self.push(invalid_key.to_owned());
                    None
                }
            },
        }
    }

    /// An optional string that must not be blank when given.
    pub fn optional_nonblank_string(&mut self, name: &str) -> Option<String> {
        let raw = self.params.0.get(name)?;
        self.present_string(name, Some(raw))
    }

    /// An optional string, blank allowed; a non-scalar gives `invalid`.
    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.params.0.get(name)? {
            Value::Null => None,
            value => {
                let coerced = coerce_string(value);
                if coerced.is_none() {
                    self.push("invalid".into());
                }
                coerced
            }
        }
    }

    fn present_string(&mut self, name: &str, raw: Option<&Value>) -> Option<String> {
        let coerced = raw.and_then(coerce_string);
        if raw.is_some_and(|v| !v.is_null()) && coerced.is_none() {
            self.push("invalid".into());
            return None;
        }
        match coerced {
            Some(text) if !text.trim().is_empty() => Some(text),
            _ => {
                self.push(format!("{}.empty_{name}", self.scope));
                None
            }
        }
    }

    /// Adds a key (declared checks written by hand, e.g. a `values` list).
    pub fn error(&mut self, key: &str) {
        self.push(key.to_owned());
    }

    /// The raw value of a parameter.
    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.params.0.get(name)
    }

    /// `page` and `limit`, with their un-prefixed keys.
    pub fn page(&mut self) -> Page {
        page_params(self.params, &mut self.errors)
    }

    /// An optional Integer that must not be blank when given: blank gives `empty_key`, a value
    /// Grape cannot coerce gives `invalid_key`.
    pub fn optional_integer(
        &mut self,
        name: &str,
        invalid_key: &str,
        empty_key: &str,
    ) -> Option<i64> {
        let raw = self.params.0.get(name)?;
        let blank = match raw {
            Value::Null => true,
            Value::String(s) => s.trim().is_empty(),
            _ => false,
        };
        if blank {
            self.push(empty_key.to_owned());
            return None;
        }
        let value = coerce_integer(raw);
        if value.is_none() {
            self.push(invalid_key.to_owned());
        }
        value
    }

    /// An optional String that must not be blank when given, with explicit keys for a wrong
    /// type and for blank.
    pub fn optional_string_keys(
        &mut self,
        name: &str,
        invalid_key: &str,
        empty_key: &str,
    ) -> Option<String> {
        let raw = self.params.0.get(name)?;
        match coerce_string(raw) {
            None if !raw.is_null() => {
                self.push(invalid_key.to_owned());
                None
            }
            Some(text) if !text.trim().is_empty() => Some(text),
            _ => {
                self.push(empty_key.to_owned());
                None
            }
        }
    }

    /// The collected errors as a 422, or Ok when there were none.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::unprocessable(self.errors))
        }
    }
}

/// Grape's String coercion: strings as they are, numbers and booleans as their text,
/// arrays and objects refused.
pub fn coerce_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The requested page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub page: i64,
    pub limit: i64,
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

impl Page {
    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(value: Value) -> Params {
        match value {
            Value::Object(map) => Params(map),
            _ => Params::default(),
        }
    }

    #[test]
    fn missing_required_strings_give_missing_and_empty_in_order() {
        let p = params(json!({}));
        let mut v = Validator::new("identity.user", &p);
        v.required_string("email");
        v.required_string("password");
        let err = v.finish().expect_err("invalid");
        assert_eq!(
            err.body,
            super::super::error::ErrorBody::Keys(vec![
                "identity.user.missing_email".into(),
                "identity.user.empty_email".into(),
                "identity.user.missing_password".into(),
                "identity.user.empty_password".into(),
            ])
        );
    }

    #[test]
    fn blank_and_wrong_types() {
        let p = params(json!({"email": "  ", "password": {"a": 1}, "username": 5}));
        let mut v = Validator::new("identity.user", &p);
        v.required_string("email");
        v.required_string("password");
        assert_eq!(v.optional_string("username").as_deref(), Some("5"));
        let err = v.finish().expect_err("invalid");
        assert_eq!(
            err.body,
            super::super::error::ErrorBody::Keys(vec![
                "identity.user.empty_email".into(),
                "invalid".into()
            ])
        );
    }

    #[test]
    fn form_brackets_build_arrays_and_objects() {
        let mut map = Map::new();
        merge_pairs(
            &mut map,
            form_urlencoded::parse(b"a[]=1&a[]=2&c[x]=y&plain=%20v"),
        );
        assert_eq!(
            Value::Object(map),
            json!({"a": ["1", "2"], "c": {"x": "y"}, "plain": " v"})
        );
    }

    #[tokio::test]
    async fn multipart_boundaries_keep_their_case() {
        let body =
            "--AbC\r\nContent-Disposition: form-data; name=\"key\"\r\n\r\nvalue\r\n--AbC--\r\n";
        let parsed = Params::parse(
            "Multipart/Form-Data; boundary=AbC",
            Some("q=1"),
            Body::from(body),
            1024,
        )
        .await
        .expect("parsed");
        assert_eq!(Value::Object(parsed.0), json!({"q": "1", "key": "value"}));
    }
}
