//! Documents uploaded as files: `POST /api/v1/documents` as `multipart/form-data` (the file in a part
//! named `file`, optional `source_path` and `title` parts) beside its JSON body. The parts are read here,
//! each capped as it arrives (the file at its format's limit, as far as its name and type tell before its
//! bytes do); `retrieval::formats` makes the file Markdown, and the document then goes the way of any
//! other (`NewDocument`, `retrieval::add_document`).

use axum::extract::multipart::MultipartError;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

use super::AppState;
use super::error::ApiError;
use super::extract::Json;
use super::limits;
use super::views::documents::DocumentAdded;
use crate::auth::context::TenantContext;
use crate::retrieval::formats::{self, Hints};
use crate::retrieval::{self, IngestOutcome, NewDocument, Original};

/// The most a text part (`source_path`, `title`) may hold; both are far shorter when valid.
const MAX_TEXT_PART_BYTES: usize = 4096;

/// A file to add as a document (`multipart/form-data`).
#[derive(ToSchema)]
#[allow(dead_code)] // A schema: the parts are read one by one (`read_upload`).
pub struct UploadDocument {
    /// The file: PDF, DOCX, HTML, CSV, Markdown or plain text (UTF-8). Its format is told from its
    /// content first, then from the part's `Content-Type` and the file name's extension.
    #[schema(value_type = String, content_media_type = "application/octet-stream")]
    file: Vec<u8>,
    /// Where the document lives in the tenant's documents; by default the file's name.
    source_path: Option<String>,
    /// By default the document's first level-1 heading, else the file name without its extension.
    title: Option<String>,
    /// The collections it belongs to, names separated by commas (`public,help`); by default `default`.
    collections: Option<String>,
}

/// A body of either kind the route takes: JSON (`T`) or a multipart upload.
pub enum JsonOrUpload<T> {
    Json(T),
    Upload(Upload),
}

/// An uploaded file with what came beside it, read but not yet looked into.
pub struct Upload {
    file: Vec<u8>,
    hints: Hints,
    source_path: Option<String>,
    title: Option<String>,
    collections: Option<String>,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonOrUpload<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if is_multipart(request.headers()) {
            let multipart = Multipart::from_request(request, state)
                .await
                .map_err(|rejection| ApiError::bad_request("bad_request", rejection.body_text()))?;
            return Ok(Self::Upload(read_upload(multipart).await?));
        }
        match Json::<T>::from_request(request, state).await {
            Ok(Json(body)) => Ok(Self::Json(body)),
            Err(mut error) if error.status == StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "expected Content-Type: application/json, or multipart/form-data with a `file` part"
                    .clone_into(&mut error.message);
                Err(error)
            }
            Err(error) => Err(error),
        }
    }
}

fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// The upload's parts: one `file`, at most one `source_path`, `title` and `collections`, nothing else.
async fn read_upload(mut multipart: Multipart) -> Result<Upload, ApiError> {
    let (mut file, mut source_path, mut title, mut collections) = (None, None, None, None);
    while let Some(mut field) = multipart.next_field().await.map_err(|error| multipart_error(&error))? {
        let name = field.name().unwrap_or_default().to_owned();
        let slot = match name.as_str() {
            "file" => {
                if file.is_some() {
                    return Err(ApiError::invalid("send one `file` part"));
                }
                let hints = Hints {
                    file_name: field.file_name().map(base_name),
                    media_type: field.content_type().map(str::to_owned),
                };
                let limit = hints.max_file_bytes();
                let bytes = read_part(&mut field, limit).await?.ok_or_else(|| {
                    let message = format!("the file is larger than {limit} bytes, the limit for its type");
                    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
                })?;
                file = Some((bytes, hints));
                continue;
            }
            "source_path" => &mut source_path,
            "title" => &mut title,
            "collections" => &mut collections,
            other => {
                return Err(ApiError::invalid(format!(
                    "unknown part `{other}`: an upload has the parts `file`, `source_path`, `title` and `collections`"
                )));
            }
        };
        if slot.is_some() {
            return Err(ApiError::invalid(format!("send one `{name}` part")));
        }
        let bytes = read_part(&mut field, MAX_TEXT_PART_BYTES)
            .await?
            .ok_or_else(|| ApiError::invalid(format!("`{name}` is longer than {MAX_TEXT_PART_BYTES} bytes")))?;
        let text = String::from_utf8(bytes).map_err(|_| ApiError::invalid(format!("`{name}` must be UTF-8 text")))?;
        // As in JSON (`extract::Json`): PostgreSQL cannot store it.
        if text.contains('\0') {
            return Err(ApiError::invalid_code("invalid_text", "text must not contain NUL characters (\\u0000)"));
        }
        *slot = Some(text);
    }
    let Some((file, hints)) = file else {
        return Err(ApiError::invalid("an upload needs a part named `file` holding the document"));
    };
    Ok(Upload { file, hints, source_path, title, collections })
}

/// A part's bytes, or `None` once they pass `limit` (the rest is not read).
async fn read_part(field: &mut axum::extract::multipart::Field<'_>, limit: usize) -> Result<Option<Vec<u8>>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|error| multipart_error(&error))? {
        if bytes.len() + chunk.len() > limit {
            return Ok(None);
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(bytes))
}

/// A malformed or cut-off multipart body in the API's shape: over the route's limit 413, stalled 408,
/// malformed 400.
fn multipart_error(error: &MultipartError) -> ApiError {
    if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE);
    }
    if limits::is_body_timeout(error) {
        return ApiError::new(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request body stopped arriving");
    }
    ApiError::bad_request("bad_request", format!("the multipart body could not be read: {}", error.body_text()))
}

/// The last segment of a file name: some clients send the path it had on their disk.
fn base_name(file_name: &str) -> String {
    file_name.rsplit(['/', '\\']).next().unwrap_or(file_name).to_owned()
}

/// Converts the upload (off the async workers) and adds it as one of the tenant's documents, as the
/// JSON route does with text.
pub async fn add(
    state: &AppState,
    context: &TenantContext,
    upload: Upload,
) -> Result<(StatusCode, axum::Json<DocumentAdded>), ApiError> {
    let Upload { file, hints, source_path, title, collections } = upload;
    let Some(source_path) = source_path.or_else(|| hints.file_name.clone().filter(|name| !name.is_empty())) else {
        return Err(ApiError::invalid("the file part has no file name: send a `source_path` part"));
    };
    let byte_size = i64::try_from(file.len()).unwrap_or(i64::MAX);
    let converted = formats::convert_in_background(file, hints).await?;
    let original = Original { media_type: converted.format.media_type().to_owned(), byte_size };
    let mut document = NewDocument::parse(&source_path, title.as_deref(), converted.markdown)?.with_original(original);
    if let Some(collections) = collections {
        let names: Vec<String> = collections.split(',').map(str::trim).map(str::to_owned).collect();
        document = document.in_collections(&names)?;
    }
    let (stored, outcome) =
        retrieval::add_document(&state.db, &state.retriever, state.engine.background(), context, &document).await?;
    let status = if outcome == IngestOutcome::Created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(DocumentAdded::new(&stored, outcome))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_name_loses_the_folders_a_client_sent_with_it() {
        assert_eq!(base_name("C:\\fakepath\\report.pdf"), "report.pdf");
        assert_eq!(base_name("docs/guide.md"), "guide.md");
        assert_eq!(base_name("plain.txt"), "plain.txt");
    }
}
