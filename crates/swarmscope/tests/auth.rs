//! Tenancy and API keys over a real socket.

mod support;

use serde_json::json;
use support::{config_with_keys, span, Server};

struct Keys {
    admin: String,
    acme_ingest: String,
    acme_read: String,
    globex_both: String,
}

fn keyed_server() -> (Server, Keys) {
    let (config, keys) = config_with_keys(&[
        (None, &["admin"]),
        (Some("acme"), &["ingest"]),
        (Some("acme"), &["read"]),
        (Some("globex"), &["ingest", "read"]),
    ]);
    let server = Server::with_config(&config);
    let mut k = keys.into_iter();
    let mut next = || k.next().expect("key");
    let keys = Keys {
        admin: next(),
        acme_ingest: next(),
        acme_read: next(),
        globex_both: next(),
    };
    (server, keys)
}

#[tokio::test]
async fn no_key_or_a_wrong_key_is_401() {
    let (server, _) = keyed_server();
    let body = span("acme", "t1", "s1", "x");
    for key in [None, Some("ssk_wrong"), Some("")] {
        let (status, reply) = server.post("/api/traces", &body, key).await;
        assert_eq!(status, 401, "{key:?}: {reply}");
        assert_eq!(reply["field"], "Authorization");
        assert_eq!(server.get("/api/traces", key).await.0, 401);
        assert_eq!(server.get("/api/traces/t1", key).await.0, 401);
    }
    assert_eq!(
        server.get("/healthz", None).await.0,
        200,
        "health needs no key"
    );
    let log = server.stderr();
    assert!(!log.contains("ssk_wrong"), "keys are never logged");
}

#[tokio::test]
async fn a_tenant_key_writes_only_its_tenant() {
    let (server, k) = keyed_server();
    let own = span("acme", "t-acme", "s1", "git.clone");
    assert_eq!(
        server.post("/api/traces", &own, Some(&k.acme_ingest)).await,
        (202, json!({"accepted": 1}))
    );

    // Another tenant in the body: refused, not rewritten, nothing stored.
    let foreign = span("globex", "t-mixed", "s2", "git.clone");
    let mine = span("acme", "t-mixed", "s3", "git.clone");
    let (status, body) = server
        .post("/api/traces", &json!([mine, foreign]), Some(&k.acme_ingest))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["field"], "[1].tenantId");

    // No tenant in the body: the key's tenant.
    let mut anonymous = span("x", "t-anon", "s4", "git.clone");
    anonymous
        .as_object_mut()
        .expect("object")
        .remove("tenantId");
    assert_eq!(
        server
            .post("/api/traces", &anonymous, Some(&k.acme_ingest))
            .await
            .0,
        202
    );

    let (_, doc) = server.get("/api/traces/t-anon", Some(&k.acme_read)).await;
    assert_eq!(doc["trace"]["tenant_id"], "acme");
    assert_eq!(server.span_count(Some(&k.admin)).await, 2);

    // A read-only key cannot ingest; an admin may ingest for any tenant.
    assert_eq!(
        server.post("/api/traces", &own, Some(&k.acme_read)).await.0,
        403
    );
    let other = span("initech", "t-admin", "s5", "x");
    assert_eq!(
        server.post("/api/traces", &other, Some(&k.admin)).await.0,
        202
    );
}

#[tokio::test]
async fn a_tenant_key_reads_only_its_tenant() {
    let (server, k) = keyed_server();
    server
        .post(
            "/api/traces",
            &span("acme", "t-acme", "s1", "a"),
            Some(&k.admin),
        )
        .await;
    server
        .post(
            "/api/traces",
            &span("globex", "t-globex", "s1", "g"),
            Some(&k.admin),
        )
        .await;

    assert_eq!(
        server.get("/api/traces/t-acme", Some(&k.acme_read)).await.0,
        200
    );
    let (status, body) = server.get("/api/traces/t-globex", Some(&k.acme_read)).await;
    assert_eq!(
        status, 404,
        "another tenant's trace reads as unknown: {body}"
    );
    assert_eq!(
        server
            .get("/api/traces/t-acme", Some(&k.globex_both))
            .await
            .0,
        404
    );

    let (_, list) = server.get("/api/traces", Some(&k.acme_read)).await;
    let tenants: Vec<&str> = list["traces"]
        .as_array()
        .expect("list")
        .iter()
        .map(|t| t["tenant_id"].as_str().expect("t"))
        .collect();
    assert_eq!(tenants, ["acme"]);
    let (status, body) = server
        .get("/api/traces?tenant_id=globex", Some(&k.acme_read))
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["field"], "tenant_id");
    assert_eq!(
        server
            .get(
                "/api/tickets/ticket_456/traces?tenant_id=globex",
                Some(&k.acme_read)
            )
            .await
            .0,
        403
    );

    // The ingest-only key cannot read; stats are for admins.
    assert_eq!(server.get("/api/traces", Some(&k.acme_ingest)).await.0, 403);
    assert_eq!(server.get("/api/stats", Some(&k.acme_read)).await.0, 403);

    let (_, all) = server.get("/api/traces", Some(&k.admin)).await;
    assert_eq!(all["traces"].as_array().expect("list").len(), 2);
    let (_, only) = server
        .get("/api/traces?tenant_id=globex", Some(&k.admin))
        .await;
    assert_eq!(only["traces"][0]["tenant_id"], "globex");
}

#[tokio::test]
async fn two_tenants_with_one_trace_id_stay_apart() {
    let (server, k) = keyed_server();
    server
        .post(
            "/api/traces",
            &span("acme", "shared", "s1", "acme-root"),
            Some(&k.acme_ingest),
        )
        .await;
    server
        .post(
            "/api/traces",
            &span("globex", "shared", "s1", "globex-root"),
            Some(&k.globex_both),
        )
        .await;
    let (_, doc) = server.get("/api/traces/shared", Some(&k.globex_both)).await;
    assert_eq!(doc["spans"].as_array().expect("spans").len(), 1);
    assert_eq!(doc["spans"][0]["name"], "globex-root");
    let (status, body) = server.get("/api/traces/shared", Some(&k.admin)).await;
    assert_eq!(status, 409, "an admin must say which tenant: {body}");
    let (status, doc) = server
        .get("/api/traces/shared?tenant_id=acme", Some(&k.admin))
        .await;
    assert_eq!(status, 200);
    assert_eq!(doc["spans"][0]["name"], "acme-root");
}
