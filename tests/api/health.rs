use crate::helpers::TestApp;

#[tokio::test]
async fn liveness_and_readiness_answer_with_a_request_id() {
    let app = TestApp::spawn().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers().contains_key("x-request-id"), "{path}");
    }
}

#[tokio::test]
async fn a_sane_incoming_request_id_is_kept_and_a_hostile_one_replaced() {
    let app = TestApp::spawn().await;
    let response = app.client.get(app.url("/healthz")).header("x-request-id", "trace-abc.123").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc.123");

    for hostile in ["x".repeat(300), "a b<script>".to_owned()] {
        let response = app.client.get(app.url("/healthz")).header("x-request-id", &hostile).send().await.unwrap();
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{hostile} was kept as {id}");
    }
}
