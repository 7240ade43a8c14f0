//! `GET /` (the demo page) and `GET /widget.js`, and the cross-origin rules the embedded widget relies on.

use reqwest::header;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// The widget token the demo page embeds, and the visitor cookie it sets.
async fn demo_page(app: &TestApp, cookie: Option<&str>) -> (String, Option<String>) {
    // Asked with another site's Origin: the page must not be readable by it.
    let mut request = app.client.get(app.url("/")).header(header::ORIGIN, "https://elsewhere.example");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store", "the page holds a token");
    let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(response.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).is_none(), "no other site may read the page");
    let set_cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|value| value.to_str().unwrap().split(';').next().unwrap().to_owned());
    let page = response.text().await.unwrap();
    // The last one: the page's text shows an example tag too.
    let token = page
        .rsplit_once("data-switchboard-token=\"")
        .and_then(|(_, rest)| rest.split('"').next())
        .expect("the page embeds the widget with a token")
        .to_owned();
    assert!(page.contains(r#"<script src="/widget.js""#), "{page}");
    (token, set_cookie)
}

#[tokio::test]
async fn the_widget_script_is_served_as_javascript() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/widget.js")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
    assert_eq!(response.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    let script = response.text().await.unwrap();
    assert!(script.contains("attachShadow"), "the widget keeps its styles in a shadow root");
}

#[tokio::test]
async fn the_demo_page_gives_each_visitor_a_widget_token_of_their_own() {
    let app = TestApp::spawn().await;
    let (token, cookie) = demo_page(&app, None).await;
    let cookie = cookie.expect("a visitor cookie");
    assert!(cookie.starts_with("sb_demo_visitor="), "{cookie}");

    // The token is a widget token: the visitor's own conversations, nothing else.
    let response = app.post("/api/v1/sessions", &token, &json!({})).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let session: Value = response.json().await.unwrap();
    let response = app.get("/api/v1/api-keys", &token).send().await.unwrap();
    assert_eq!(response.status(), 403);

    // The same browser comes back as the same visitor and finds its conversation.
    let (again, renewed) = demo_page(&app, Some(&cookie)).await;
    assert_eq!(renewed.as_deref(), Some(cookie.as_str()));
    let listed = app.get_json("/api/v1/sessions", &again).await;
    assert_eq!(listed["sessions"][0]["id"], session["id"], "{listed}");

    // Another browser is another visitor and sees none of it.
    let (stranger, _) = demo_page(&app, None).await;
    let listed = app.get_json("/api/v1/sessions", &stranger).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 0, "{listed}");
    let response =
        app.get(&format!("/api/v1/sessions/{}", session["id"].as_str().unwrap()), &stranger).send().await.unwrap();
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn pages_of_any_origin_may_call_the_api_with_a_bearer_token() {
    let app = TestApp::spawn().await;
    let preflight = app
        .client
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/sessions/abc/messages"))
        .header(header::ORIGIN, "https://shop.example")
        .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
        .header(header::ACCESS_CONTROL_REQUEST_HEADERS, "authorization, content-type, last-event-id")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://shop.example");
    assert!(preflight.headers().get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none(), "never with cookies");
    // Any header: SDKs add their own.
    assert_eq!(preflight.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS], "*");

    // An answer, even an error, carries the header so the widget can read it.
    let from_shop =
        |method| app.client.request(method, app.url("/api/v1/sessions")).header(header::ORIGIN, "https://shop.example");
    let response = from_shop(reqwest::Method::GET).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://shop.example");
    // So does an error made outside the handlers (a wrong method: axum's 405, rewritten as JSON).
    let response = from_shop(reqwest::Method::PUT).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://shop.example");
    assert!(response.headers().contains_key(header::ALLOW), "the Allow header survives the JSON rewrite");
}

#[tokio::test]
async fn only_a_browser_on_this_machine_gets_the_demo_token() {
    let app = TestApp::spawn().await;
    // Behind a reverse proxy every visitor would come from loopback: a proxy's headers say so.
    let proxied = app.client.get(app.url("/")).header("x-forwarded-for", "203.0.113.7").send().await.unwrap();
    // A page of another site whose name was rebound to 127.0.0.1 still names itself.
    let rebound = app.client.get(app.url("/")).header(header::HOST, "attacker.example").send().await.unwrap();
    for response in [proxied, rebound] {
        assert_eq!(response.status(), 200);
        assert!(response.headers().get(header::SET_COOKIE).is_none());
        let page = response.text().await.unwrap();
        assert!(!page.contains(r#"<script src="/widget.js""#), "{page}");
        assert!(page.contains("The live demo is off here"), "{page}");
    }
}
