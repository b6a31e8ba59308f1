//! Checks of the outbox: claim order, leases, the status lane, giving up, and notices.

use super::*;

pub async fn outbox_claims_follow_commit_order(db: &mut TestDb) {
    let s = &db.store;
    let mut c = new_incident("#a", vec![declared("#a", T0)]);
    c.posts = vec![
        post("#a", r#"{"text":"one"}"#, after(T0, 0)),
        post("#a", r#"{"text":"two"}"#, after(T0, 10)),
        post("#ops", r#"{"text":"three"}"#, after(T0, 20)),
    ];
    let a = s.commit(c).await.expect("commit");
    assert_eq!(s.pending_posts().await.expect("pending"), 3);

    assert_eq!(claim(s, "w1", after(T0, -1)).await, vec![]);
    // One post per channel at a time: the head of #a, and #ops once it is due.
    let first = claim(s, "w1", after(T0, 10)).await;
    assert_eq!(first.len(), 1);
    let one = first[0].clone();
    assert_eq!(one.incident, Some(a.incident));
    assert_eq!(one.channel, "#a");
    assert_eq!(one.body, r#"{"text":"one"}"#);
    assert_eq!((one.attempts, one.earlier_sends), (0, 0));
    assert_eq!(one.created_at, t(T0));
    assert!(!one.taken_over());
    let ops = claim(s, "w1", after(T0, 20)).await;
    assert_eq!(
        ops.iter().map(|r| r.channel.as_str()).collect::<Vec<_>>(),
        vec!["#ops"]
    );
    assert!(
        s.record_delivery(&ops[0], after(T0, 21), "ts-3")
            .await
            .expect("delivered")
    );

    // The head fails: nothing of #a overtakes it while it backs off.
    assert!(
        s.record_failure(&one, after(T0, 300), "rate limited")
            .await
            .expect("failed")
    );
    assert_eq!(claim(s, "w1", after(T0, 299)).await, vec![]);
    let again = claim(s, "w1", after(T0, 300)).await;
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].id, again[0].attempts, again[0].earlier_sends),
        (one.id, 1, 1)
    );
    assert!(!again[0].taken_over(), "the failure was recorded");
    assert!(
        s.record_delivery(&again[0], after(T0, 301), "ts-1")
            .await
            .expect("delivered")
    );
    // A late report under the old claim changes nothing.
    assert!(
        !s.record_failure(&one, after(T0, 302), "late")
            .await
            .expect("late")
    );
    assert!(
        !s.record_delivery(&one, after(T0, 302), "ts-x")
            .await
            .expect("late")
    );

    let two = claim(s, "w1", after(T0, 301)).await;
    assert_eq!(
        two.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
        vec![r#"{"text":"two"}"#]
    );
    assert!(
        s.record_delivery(&two[0], after(T0, 302), "ts-2")
            .await
            .expect("delivered")
    );
    assert_eq!(s.pending_posts().await.expect("pending"), 0);
    assert_eq!(claim(s, "w1", after(T0, 10_000)).await, vec![]);
}

pub async fn a_claim_is_taken_over_only_after_its_lease(db: &mut TestDb) {
    let s = &db.store;
    // A second handle on the same database: another replica.
    let other = Store::connect(&db.url).await.expect("second replica");
    let mut c = new_incident("#a", vec![declared("#a", T0)]);
    c.posts = vec![post("#a", r#"{"text":"one"}"#, t(T0))];
    s.commit(c).await.expect("commit");

    let mine = claim(s, "w1", t(T0)).await;
    assert_eq!(mine.len(), 1);
    // Leased for 60 s: the other replica gets nothing, however often it asks.
    assert_eq!(claim(&other, "w2", after(T0, 59)).await, vec![]);
    // w1 died mid-send. After the lease the row is taken over, marked as maybe sent.
    let theirs = claim(&other, "w2", after(T0, 61)).await;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].id, mine[0].id);
    assert_eq!(theirs[0].earlier_sends, 1);
    assert!(theirs[0].taken_over());
    // The old holder cannot record anything any more; the new one can.
    assert!(
        !s.record_delivery(&mine[0], after(T0, 62), "ts-old")
            .await
            .expect("old")
    );
    assert!(
        other
            .record_delivery(&theirs[0], after(T0, 62), "ts-new")
            .await
            .expect("new")
    );
    assert_eq!(s.pending_posts().await.expect("pending"), 0);
    other.close().await;
}

pub async fn status_posts_coalesce_in_a_lane_of_their_own(db: &mut TestDb) {
    let s = &db.store;
    let mut c = new_incident("#a", vec![declared("#a", T0)]);
    c.posts = vec![
        status_post("#a", "s1", t(T0)),
        post("#a", r#"{"text":"p1"}"#, t(T0)),
        status_post("#a", "s2", t(T0)),
    ];
    let a = s.commit(c).await.expect("commit");
    // The status waits for the post committed before it.
    let first = claim(s, "w1", t(T0)).await;
    assert_eq!(
        first
            .iter()
            .map(|r| (r.status, r.body.as_str()))
            .collect::<Vec<_>>(),
        vec![(false, r#"{"text":"p1"}"#)]
    );
    assert!(
        s.record_delivery(&first[0], t(T0), "ts-p1")
            .await
            .expect("p1")
    );
    // Then only the newest status; the older one is retired.
    let status = claim(s, "w1", t(T0)).await;
    assert_eq!(
        status
            .iter()
            .map(|r| (r.status, r.body.as_str()))
            .collect::<Vec<_>>(),
        vec![(true, "s2")]
    );
    assert!(!status[0].status_in_doubt);
    assert_eq!(s.pending_posts().await.expect("pending"), 1);
    // The status edit fails; later posts still go out.
    assert!(
        s.record_failure(&status[0], after(T0, 600), "edit failed")
            .await
            .expect("failed")
    );
    let mut more = append(a.incident, 1, vec![note("n", after(T0, 1))]);
    more.posts = vec![post("#a", r#"{"text":"p2"}"#, after(T0, 1))];
    s.commit(more).await.expect("p2");
    let next = claim(s, "w1", after(T0, 1)).await;
    assert_eq!(
        next.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
        vec![r#"{"text":"p2"}"#]
    );
    assert!(
        s.record_delivery(&next[0], after(T0, 1), "ts-p2")
            .await
            .expect("p2")
    );
    // A newer status replaces the failing one at once; it knows an earlier status post
    // of the incident went out without a recorded message, so it looks first.
    let mut newer = append(a.incident, 2, vec![note("m", after(T0, 2))]);
    newer.posts = vec![status_post("#a", "s3", after(T0, 2))];
    s.commit(newer).await.expect("s3");
    let s3 = claim(s, "w1", after(T0, 2)).await;
    assert_eq!(
        s3.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
        vec!["s3"]
    );
    assert!(s3[0].status_in_doubt);
    assert!(
        s.record_delivery(&s3[0], after(T0, 2), "ts-status")
            .await
            .expect("s3")
    );
    assert_eq!(
        s.status_message(a.incident).await.expect("read").as_deref(),
        Some("ts-status")
    );
    assert_eq!(s.pending_posts().await.expect("pending"), 0);
}

pub async fn a_given_up_post_leaves_the_queue_with_its_event(db: &mut TestDb) {
    let s = &db.store;
    let mut c = new_incident("#a", vec![declared("#a", T0)]);
    c.posts = vec![
        post("#a", r#"{"text":"one"}"#, t(T0)),
        post("#a", r#"{"text":"two"}"#, t(T0)),
    ];
    let a = s.commit(c).await.expect("commit");
    let one = claim(s, "w1", t(T0)).await.remove(0);
    let mut stale = append(a.incident, 1, vec![note("gave up", after(T0, 1))]);
    stale.gave_up = Some(GiveUp {
        outbox: one.id,
        claim_token: "someone else".into(),
        error: "x".into(),
    });
    assert!(matches!(
        s.commit(stale).await,
        Err(StoreError::LeaseLost(_))
    ));
    assert_eq!(
        s.events(a.incident).await.expect("events").len(),
        1,
        "nothing written"
    );
    let mut give_up = append(a.incident, 1, vec![note("gave up", after(T0, 1))]);
    give_up.gave_up = Some(GiveUp {
        outbox: one.id,
        claim_token: one.claim_token.clone(),
        error: "Slack API error: not_in_channel".into(),
    });
    s.commit(give_up).await.expect("give up");
    assert_eq!(
        s.given_up().await.expect("given up"),
        vec![(
            "#a".to_string(),
            "Slack API error: not_in_channel".to_string()
        )]
    );
    let next = claim(s, "w1", after(T0, 1)).await;
    assert_eq!(
        next.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
        vec![r#"{"text":"two"}"#]
    );
}

pub async fn status_message_is_recorded_with_its_delivery(db: &mut TestDb) {
    let s = &db.store;
    let mut c = new_incident("slack:C1", vec![declared("slack:C1", T0)]);
    c.posts = vec![status_post("slack:C1", r#"{"text":"status"}"#, t(T0))];
    let a = s.commit(c).await.expect("commit");
    assert_eq!(s.status_message(a.incident).await.expect("read"), None);
    let due = claim(s, "w1", t(T0)).await;
    assert!(
        s.record_delivery(&due[0], t(T0), "1700000000.000100")
            .await
            .expect("delivered")
    );
    assert_eq!(
        s.status_message(a.incident).await.expect("read").as_deref(),
        Some("1700000000.000100")
    );
    assert_eq!(s.outbox_backlog().await.expect("backlog"), (0, None));
}

pub async fn a_notice_key_posts_once_outside_any_incident(db: &mut TestDb) {
    let key = "drill-due:orders:pitr:2026Q4";
    let notice = |body: &str| post("#drills", body, t(T0));
    // Two writers at once: one key, one post.
    let (a, b) = tokio::join!(
        db.store.post_notice(key, notice(r#"{"text":"first"}"#)),
        db.store.post_notice(key, notice(r#"{"text":"second"}"#)),
    );
    assert_eq!(
        [a.expect("first"), b.expect("second")]
            .iter()
            .filter(|x| **x)
            .count(),
        1
    );
    // A restart does not forget it.
    db.reopen().await;
    let s = &db.store;
    assert!(!s.post_notice(key, notice("{}")).await.expect("again"));
    assert!(
        s.post_notice("drill-due:orders:pitr:2027Q1", notice("{}"))
            .await
            .expect("next quarter")
    );
    let due = claim(s, "w1", t(T0)).await;
    assert_eq!(due.len(), 1, "one post per lane head: {due:?}");
    assert_eq!(due[0].incident, None);
    assert_eq!(due[0].channel, "#drills");
    assert!(
        s.record_delivery(&due[0], t(T0), "ok")
            .await
            .expect("delivered")
    );
    assert_eq!(claim(s, "w1", t(T0)).await.len(), 1);
    assert!(matches!(
        s.post_notice("k\0", notice("{}")).await,
        Err(StoreError::Unstorable(_))
    ));
}
