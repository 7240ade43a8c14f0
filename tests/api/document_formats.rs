//! Documents uploaded as files (issue 19, item 8): PDF, DOCX, HTML, CSV, Markdown and plain text each
//! become Markdown that search finds with its headings and tables, the original's type and size
//! recorded; a file that cannot be read is refused with a stable code and nothing stored; `switchboard
//! ingest` (`corpus::sync`) reads the same formats. Every file is made here, small and real: DOCX with
//! the `zip` crate, PDF with `lopdf`.

use std::fmt::Write as _;
use std::io::{Cursor, Write as _};

use lopdf::{Document, Object, Stream, dictionary};
use serde_json::{Value, json};
use switchboard::ids::TenantId;
use switchboard::retrieval::corpus::{self, CorpusError};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{TestApp, TestTenant, assert_error};

const DOCX_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// One part of a `multipart/form-data` body.
struct Part<'a> {
    name: &'a str,
    file_name: Option<&'a str>,
    content_type: Option<&'a str>,
    bytes: Vec<u8>,
}

impl<'a> Part<'a> {
    fn file(file_name: &'a str, content_type: Option<&'a str>, bytes: Vec<u8>) -> Self {
        Self { name: "file", file_name: Some(file_name), content_type, bytes }
    }

    fn text(name: &'a str, text: &str) -> Self {
        Self { name, file_name: None, content_type: None, bytes: text.as_bytes().to_vec() }
    }
}

/// The body as a browser or curl would send it, with its boundary.
fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----switchboard-test-boundary-7f3a";
    let mut body = Vec::new();
    for part in parts {
        write!(body, "--{boundary}\r\nContent-Disposition: form-data; name=\"{}\"", part.name).unwrap();
        if let Some(file_name) = part.file_name {
            write!(body, "; filename=\"{file_name}\"").unwrap();
        }
        body.extend_from_slice(b"\r\n");
        if let Some(content_type) = part.content_type {
            write!(body, "Content-Type: {content_type}\r\n").unwrap();
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(&part.bytes);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(app: &TestApp, tenant: &TestTenant, parts: &[Part<'_>]) -> reqwest::Response {
    let (content_type, body) = multipart(parts);
    app.client
        .post(app.url("/api/v1/documents"))
        .bearer_auth(&tenant.admin_key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// Uploads one file and returns the stored document, asserting it was created from a file of `media_type`.
async fn upload_created(app: &TestApp, tenant: &TestTenant, parts: &[Part<'_>], media_type: &str) -> Value {
    let size = parts.iter().find(|part| part.name == "file").unwrap().bytes.len();
    let response = upload(app, tenant, parts).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["outcome"], "created");
    assert_eq!(body["document"]["original_media_type"], media_type, "{body}");
    assert_eq!(body["document"]["original_byte_size"], size, "{body}");
    body["document"].clone()
}

/// Full-text search, so that what is found is what the words say.
async fn search(app: &TestApp, tenant: &TestTenant, query: &str) -> Vec<Value> {
    let body = json!({"query": query, "k": 5, "mode": "full_text"});
    let response = app.post("/api/v1/search", &tenant.admin_key, &body).send().await.unwrap();
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    answer["results"].as_array().unwrap().clone()
}

/// The chunk text with runs of spaces made one (converters may pad table cells to align them).
fn squeezed(hit: &Value) -> String {
    hit["content"].as_str().unwrap().split(' ').filter(|word| !word.is_empty()).collect::<Vec<_>>().join(" ")
}

async fn document_count(app: &TestApp, tenant: &TestTenant) -> usize {
    app.get_json("/api/v1/documents", &tenant.admin_key).await["documents"].as_array().unwrap().len()
}

/// A DOCX of `paragraphs` (WordprocessingML body XML), without styles or numbering parts: Word's
/// built-in style ids (`Heading1`) say what a heading is.
fn docx(body: &str) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer = zip::ZipWriter::new(Cursor::new(&mut bytes));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    writer.start_file("[Content_Types].xml", options).unwrap();
    writer
        .write_all(
            br#"<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#,
        )
        .unwrap();
    writer.start_file("word/document.xml", options).unwrap();
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    writer.write_all(document.as_bytes()).unwrap();
    writer.finish().unwrap();
    bytes
}

fn paragraph(style: Option<&str>, text: &str) -> String {
    let properties = style.map_or(String::new(), |style| format!("<w:pPr><w:pStyle w:val=\"{style}\"/></w:pPr>"));
    format!("<w:p>{properties}<w:r><w:t xml:space=\"preserve\">{text}</w:t></w:r></w:p>")
}

fn table(rows: &[&[&str]]) -> String {
    let mut xml = String::from("<w:tbl>");
    for cells in rows {
        xml.push_str("<w:tr>");
        for cell in *cells {
            write!(xml, "<w:tc><w:p><w:r><w:t>{cell}</w:t></w:r></w:p></w:tc>").unwrap();
        }
        xml.push_str("</w:tr>");
    }
    xml + "</w:tbl>"
}

/// A PDF with one page per entry of `pages`, each showing its lines in Helvetica, with the trailer `/ID`
/// that encryption needs.
fn pdf_document(pages: &[&[&str]]) -> Document {
    let mut document = Document::with_version("1.5");
    document.trailer.set(
        "ID",
        Object::Array(vec![Object::string_literal(b"0123456789abcdef"), Object::string_literal(b"fedcba9876543210")]),
    );
    let pages_id = document.new_object_id();
    let font_id = document.add_object(dictionary! {"Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica"});
    let kids: Vec<Object> = pages
        .iter()
        .map(|lines| {
            let mut content = String::new();
            for (index, line) in lines.iter().enumerate() {
                write!(content, "BT\n/F1 12 Tf\n72 {} Td\n({line}) Tj\nET\n", 720 - 16 * index).unwrap();
            }
            let contents_id = document.add_object(Stream::new(dictionary! {}, content.into_bytes()));
            Object::Reference(document.add_object(dictionary! {
                "Type" => "Page",
                "Parent" => pages_id,
                "MediaBox" => vec![0.into(), 0.into(), 612.into(), 792.into()],
                "Resources" => dictionary! { "Font" => dictionary! { "F1" => font_id } },
                "Contents" => contents_id,
            }))
        })
        .collect();
    let count = i64::try_from(kids.len()).unwrap();
    document
        .objects
        .insert(pages_id, Object::Dictionary(dictionary! {"Type" => "Pages", "Kids" => kids, "Count" => count}));
    let catalog_id = document.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages_id});
    document.trailer.set("Root", catalog_id);
    document
}

fn pdf(pages: &[&[&str]]) -> Vec<u8> {
    let mut bytes = Vec::new();
    pdf_document(pages).save_to(&mut bytes).unwrap();
    bytes
}

/// The PDF encrypted (RC4, 128 bits) with these passwords: an empty user password opens it for reading.
fn encrypted_pdf(pages: &[&[&str]], user_password: &str) -> Vec<u8> {
    let mut document = pdf_document(pages);
    let state = lopdf::EncryptionState::try_from(lopdf::EncryptionVersion::V2 {
        document: &document,
        owner_password: "owner-secret",
        user_password,
        key_length: 128,
        permissions: lopdf::Permissions::PRINTABLE,
    })
    .unwrap();
    document.encrypt(&state).unwrap();
    let mut bytes = Vec::new();
    document.save_to(&mut bytes).unwrap();
    bytes
}

fn inspection_docx() -> Vec<u8> {
    docx(
        &[
            paragraph(Some("Heading1"), "Hive inspection"),
            paragraph(None, "The queen excluder is checked every Tuesday."),
            paragraph(Some("Heading2"), "Honey yields"),
            table(&[&["Frame", "Honey kg"], &["7", "2.5"], &["9", "3.1"]]),
        ]
        .concat(),
    )
}

fn swarm_page() -> &'static str {
    "<!DOCTYPE html><html><head><title>Swarms</title><script>var tracker = 1;</script></head><body>\
     <h1>Swarm season</h1><p>Colonies swarm when the brood nest is crowded.</p><h2>Signs</h2>\
     <ul><li>queen cells along the frame edges</li><li>idle foragers</li></ul>\
     <table><thead><tr><th>Month</th><th>Swarms</th></tr></thead><tbody><tr><td>May</td><td>12</td></tr></tbody></table>\
     </body></html>"
}

#[tokio::test]
async fn files_of_every_format_are_found_by_search_with_their_headings_and_tables() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("apiary").await;

    let docx_bytes = inspection_docx();
    let document =
        upload_created(&app, &tenant, &[Part::file("inspection.docx", Some(DOCX_TYPE), docx_bytes.clone())], DOCX_TYPE)
            .await;
    assert_eq!(document["source_path"], "inspection.docx");
    assert_eq!(document["title"], "Hive inspection", "the first heading names it");
    // The PDF's type comes from its content, whatever the part declares.
    let propolis = pdf(&[&["Propolis samples are frozen at minus eighteen degrees."], &["Varroa counts follow."]]);
    upload_created(
        &app,
        &tenant,
        &[Part::file("propolis.pdf", Some("application/octet-stream"), propolis.clone())],
        "application/pdf",
    )
    .await;
    let page = swarm_page().as_bytes().to_vec();
    upload_created(&app, &tenant, &[Part::file("swarms.html", Some("text/html; charset=utf-8"), page)], "text/html")
        .await;
    let weights = b"hive,weight kg\nAurora,41.5\nBorealis,38.2\n".to_vec();
    let csv = upload_created(
        &app,
        &tenant,
        &[
            Part::text("source_path", "data/hive-weights.csv"),
            Part::text("title", "Hive weights"),
            Part::file("export.csv", None, weights),
        ],
        "text/csv",
    )
    .await;
    assert_eq!(
        (csv["source_path"].as_str(), csv["title"].as_str()),
        (Some("data/hive-weights.csv"), Some("Hive weights"))
    );
    let notes = b"# Notes\n\nThe nectar flow peaks in July.\n".to_vec();
    upload_created(&app, &tenant, &[Part::file("notes.md", None, notes)], "text/markdown").await;
    let plain = b"Wax moths dislike cold storage.\n".to_vec();
    upload_created(&app, &tenant, &[Part::file("moths.txt", Some("text/plain"), plain)], "text/plain").await;
    // A PDF encrypted only against changes (an empty user password) is read.
    let restricted = encrypted_pdf(&[&["Drone brood is removed in spring."]], "");
    upload_created(&app, &tenant, &[Part::file("drones.pdf", Some("application/pdf"), restricted)], "application/pdf")
        .await;

    // DOCX: the heading is the passage's place, the table a Markdown table.
    let hits = search(&app, &tenant, "queen excluder Tuesday").await;
    assert_eq!(hits[0]["source_path"], "inspection.docx", "{hits:#?}");
    assert_eq!(hits[0]["heading_path"][0], "Hive inspection", "{hits:#?}");
    let hits = search(&app, &tenant, "frame honey yields").await;
    let table = hits.iter().find(|hit| hit["source_path"] == "inspection.docx").expect("the table is found");
    assert!(squeezed(table).contains("| Frame | Honey kg |\n| --- | --- |\n| 7 | 2.5 |\n| 9 | 3.1 |"), "{table:#?}");
    assert!(squeezed(table).contains("## Honey yields\n\n| Frame |"), "the table stays under its heading: {table:#?}");
    // PDF: its text, from every page.
    let hits = search(&app, &tenant, "propolis frozen").await;
    assert_eq!(hits[0]["source_path"], "propolis.pdf", "{hits:#?}");
    assert!(squeezed(&hits[0]).contains("Propolis samples are frozen at minus eighteen degrees."), "{hits:#?}");
    assert_eq!(search(&app, &tenant, "varroa").await[0]["source_path"], "propolis.pdf");
    assert_eq!(search(&app, &tenant, "drone brood").await[0]["source_path"], "drones.pdf");
    // HTML: headings, list and table; the script is not text.
    let hits = search(&app, &tenant, "swarms May").await;
    let swarms = hits.iter().find(|hit| hit["source_path"] == "swarms.html").expect("the page is found");
    assert_eq!(swarms["heading_path"][0], "Swarm season", "{swarms:#?}");
    assert!(squeezed(swarms).contains("## Signs\n\n- queen cells along the frame edges"), "{swarms:#?}");
    assert!(squeezed(swarms).contains("- queen cells along the frame edges"), "{swarms:#?}");
    assert!(squeezed(swarms).contains("| May | 12 |"), "{swarms:#?}");
    assert!(search(&app, &tenant, "tracker").await.is_empty(), "scripts are not indexed");
    // CSV: a table under its header row.
    let hits = search(&app, &tenant, "Borealis").await;
    assert_eq!(hits[0]["source_path"], "data/hive-weights.csv", "{hits:#?}");
    assert!(squeezed(&hits[0]).contains("| hive | weight kg |\n| --- | --- |\n| Aurora | 41.5 |\n| Borealis | 38.2 |"));
    assert_eq!(search(&app, &tenant, "nectar July").await[0]["source_path"], "notes.md");
    assert_eq!(search(&app, &tenant, "wax moths").await[0]["source_path"], "moths.txt");

    // The list shows what each document was made from.
    let listed = app.get_json("/api/v1/documents", &tenant.admin_key).await;
    let media_types: Vec<(&str, &str)> = listed["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|document| (document["source_path"].as_str().unwrap(), document["original_media_type"].as_str().unwrap()))
        .collect();
    assert!(media_types.contains(&("inspection.docx", DOCX_TYPE)), "{media_types:?}");
    assert!(media_types.contains(&("propolis.pdf", "application/pdf")), "{media_types:?}");
    assert_eq!(media_types.len(), 7);

    // The same file again changes nothing; the same text sent as JSON is recorded as text.
    let again = upload(&app, &tenant, &[Part::file("propolis.pdf", None, propolis)]).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<Value>().await.unwrap()["outcome"], "unchanged");
    let text = json!({"source_path": "moths.txt", "content": "Wax moths dislike cold storage.\n"});
    let replaced: Value =
        app.post("/api/v1/documents", &tenant.admin_key, &text).send().await.unwrap().json().await.unwrap();
    assert_eq!(replaced["outcome"], "updated", "{replaced}");
    assert_eq!(replaced["document"]["original_media_type"], "text/markdown");
}

#[tokio::test]
async fn files_that_cannot_be_read_are_refused_with_a_stable_code_and_nothing_is_stored() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("apiary").await;
    let kept = json!({"source_path": "kept.md", "content": "# Kept\n\nA document that stays."});
    assert_eq!(app.post("/api/v1/documents", &tenant.admin_key, &kept).send().await.unwrap().status(), 201);

    // A zip whose document part inflates past the cap: refused once the cap is reached.
    let mut bomb = Vec::new();
    let mut writer = zip::ZipWriter::new(Cursor::new(&mut bomb));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated).large_file(true);
    writer.start_file("word/document.xml", options).unwrap();
    let spaces = vec![b' '; 1024 * 1024];
    for _ in 0..40 {
        writer.write_all(&spaces).unwrap();
    }
    writer.finish().unwrap();
    assert!(bomb.len() < 60 * 1024, "the bomb fits the test router's body limit: {}", bomb.len());
    let mut spreadsheet = Vec::new();
    let mut writer = zip::ZipWriter::new(Cursor::new(&mut spreadsheet));
    writer.start_file("xl/workbook.xml", zip::write::SimpleFileOptions::default()).unwrap();
    writer.write_all(b"<workbook/>").unwrap();
    writer.finish().unwrap();
    let mut truncated_docx = inspection_docx();
    truncated_docx.truncate(truncated_docx.len() / 2);
    let mut truncated_pdf = pdf(&[&["Half a file."]]);
    truncated_pdf.truncate(40);

    let refused: Vec<(&str, Vec<u8>, &str)> = vec![
        ("secret.pdf", encrypted_pdf(&[&["The hive code is 4711."]], "user-secret"), "encrypted_document"),
        ("broken.pdf", truncated_pdf, "unreadable_document"),
        ("report.pdf", b"this is not a PDF at all".to_vec(), "unreadable_document"),
        ("scan.pdf", pdf(&[&[]]), "unreadable_document"),
        ("broken.docx", truncated_docx, "unreadable_document"),
        ("bomb.docx", bomb, "unreadable_document"),
        ("sheet.xlsx", spreadsheet, "unsupported_document_format"),
        ("photo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01".to_vec(), "unsupported_document_format"),
        ("legacy.doc", [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1, 0, 0].to_vec(), "unsupported_document_format"),
        ("latin1.txt", b"caf\xe9 au lait".to_vec(), "unreadable_document"),
        ("empty.csv", Vec::new(), "unreadable_document"),
    ];
    for (file_name, bytes, code) in refused {
        let response = upload(&app, &tenant, &[Part::file(file_name, None, bytes)]).await;
        let body = assert_error(response, 422, code).await;
        assert!(!body["error"]["message"].as_str().unwrap().is_empty(), "{file_name}: {body}");
    }

    // What the upload itself gets wrong.
    let no_file = upload(&app, &tenant, &[Part::text("source_path", "a.md")]).await;
    assert_error(no_file, 422, "invalid_request").await;
    let unknown = upload(&app, &tenant, &[Part::file("a.md", None, b"# A".to_vec()), Part::text("owner", "me")]).await;
    assert_error(unknown, 422, "invalid_request").await;
    let unnamed = Part { name: "file", file_name: None, content_type: Some("text/plain"), bytes: b"text".to_vec() };
    assert_error(upload(&app, &tenant, &[unnamed]).await, 422, "invalid_request").await;
    let nul = upload(&app, &tenant, &[Part::text("title", "a\0b"), Part::file("x.md", None, b"# X".to_vec())]).await;
    assert_error(nul, 422, "invalid_text").await;
    let escaping =
        upload(&app, &tenant, &[Part::text("source_path", "../x.md"), Part::file("x.md", None, b"# X".to_vec())]).await;
    assert_error(escaping, 422, "invalid_request").await;
    let wrong_type = app
        .client
        .post(app.url("/api/v1/documents"))
        .bearer_auth(&tenant.admin_key)
        .header("content-type", "application/pdf")
        .body(pdf(&[&["Sent bare."]]))
        .send()
        .await
        .unwrap();
    assert_error(wrong_type, 415, "unsupported_media_type").await;
    let (_, chat_only) = app.create_key(&tenant, &["chat"]).await;
    let (content_type, body) = multipart(&[Part::file("a.md", None, b"# A".to_vec())]);
    let forbidden = app
        .client
        .post(app.url("/api/v1/documents"))
        .bearer_auth(&chat_only)
        .header("content-type", content_type)
        .body(body);
    assert_error(forbidden.send().await.unwrap(), 403, "forbidden").await;

    assert_eq!(document_count(&app, &tenant).await, 1, "nothing refused was stored");
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = 'document.saved'")
            .bind(tenant.id)
            .fetch_one(&app.owner_db)
            .await
            .unwrap();
    assert_eq!(audited, 1);
}

#[tokio::test]
async fn an_upload_declared_larger_than_the_route_allows_is_refused_before_its_body() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("apiary").await;
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    let head = format!(
        "POST /api/v1/documents HTTP/1.1\r\nhost: switchboard\r\nauthorization: Bearer {}\r\n\
         content-type: multipart/form-data; boundary=x\r\ncontent-length: {}\r\n\r\n",
        tenant.admin_key,
        200 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Nothing of the body is sent: the answer comes on the head alone, and the server closes.
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");
    assert_eq!(document_count(&app, &tenant).await, 0);
}

#[tokio::test]
async fn ingest_reads_the_same_formats_from_a_folder() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("apiary").await;
    let folder = std::env::temp_dir().join(format!("switchboard-formats-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(folder.join("guides")).unwrap();
    std::fs::write(folder.join("guides/inspection.docx"), inspection_docx()).unwrap();
    std::fs::write(folder.join("propolis.pdf"), pdf(&[&["Propolis samples are frozen at minus eighteen degrees."]]))
        .unwrap();
    std::fs::write(folder.join("swarms.htm"), swarm_page()).unwrap();
    std::fs::write(folder.join("weights.csv"), "hive,weight kg\nAurora,41.5\n").unwrap();
    std::fs::write(folder.join("notes.md"), "# Notes\n\nThe nectar flow peaks in July.\n").unwrap();
    std::fs::write(folder.join("photo.png"), b"\x89PNG\r\n\x1a\n").unwrap();

    let report = corpus::sync(&app.app_db, TenantId(tenant.id), &folder, None, false, |_, _, _| {}).await.unwrap();
    assert_eq!(report.created, 5, "{report:?}: every file of a format read, the image skipped");
    let hits = search(&app, &tenant, "queen excluder Tuesday").await;
    assert_eq!(hits[0]["source_path"], "guides/inspection.docx");
    assert_eq!(hits[0]["heading_path"][0], "Hive inspection");
    assert_eq!(search(&app, &tenant, "propolis").await[0]["source_path"], "propolis.pdf");
    let listed = app.get_json("/api/v1/documents", &tenant.admin_key).await;
    let swarms = listed["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|document| document["source_path"] == "swarms.htm")
        .unwrap();
    assert_eq!(swarms["original_media_type"], "text/html");
    assert_eq!(swarms["original_byte_size"], swarm_page().len());

    // Again: nothing changed. Then a file that cannot be read stops the run, naming it.
    let report = corpus::sync(&app.app_db, TenantId(tenant.id), &folder, None, false, |_, _, _| {}).await.unwrap();
    assert_eq!(report.unchanged, 5, "{report:?}");
    std::fs::write(folder.join("secret.pdf"), encrypted_pdf(&[&["Hidden."]], "user-secret")).unwrap();
    let error = corpus::sync(&app.app_db, TenantId(tenant.id), &folder, None, false, |_, _, _| {}).await.unwrap_err();
    assert!(matches!(&error, CorpusError::Format { path, .. } if path == "secret.pdf"), "{error}");
    std::fs::remove_dir_all(&folder).unwrap();
}

#[tokio::test]
async fn the_openapi_document_offers_json_and_multipart_bodies_for_adding_a_document() {
    let app = TestApp::spawn().await;
    let document: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let content = &document["paths"]["/api/v1/documents"]["post"]["requestBody"]["content"];
    assert!(content["application/json"].is_object(), "{content}");
    let upload = &content["multipart/form-data"]["schema"];
    let schema = match upload["$ref"].as_str() {
        Some(reference) => &document["components"]["schemas"][reference.rsplit('/').next().unwrap()],
        None => upload,
    };
    assert_eq!(schema["required"], json!(["file"]), "{schema}");
    assert!(schema["properties"]["source_path"].is_object(), "{schema}");
}

#[tokio::test]
async fn an_upload_names_its_collections_in_a_part_of_its_own() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let created = app.post("/api/v1/collections", &tenant.admin_key, &json!({ "name": "public" })).send().await;
    assert_eq!(created.unwrap().status(), 201);
    let file = || Part::file("faq.md", Some("text/markdown"), b"# FAQ\n\nVisitors park on level two.".to_vec());
    let response = upload(&app, &tenant, &[file(), Part::text("collections", "public, default")]).await;
    assert_eq!(response.status(), 201);
    let stored: Value = response.json().await.unwrap();
    assert_eq!(stored["document"]["collections"], json!(["default", "public"]));
    let unknown = upload(&app, &tenant, &[file(), Part::text("collections", "nowhere")]).await;
    assert_error(unknown, 422, "unknown_collection").await;
}
