//! Checks of the operations queue: watching, launch and finish, and change checks.

use super::*;

pub async fn operations_are_watched_by_one_replica(db: &mut TestDb) {
    let s = &db.store;
    let other = Store::connect(&db.url).await.expect("second replica");
    let a = s
        .commit(new_incident("#a", vec![declared("#a", T0)]))
        .await
        .expect("a");
    let mut q = append(a.incident, 1, vec![note("confirmed", after(T0, 1))]);
    q.operations = vec![queue("op1", "a-op1")];
    s.commit(q).await.expect("queue");

    let lease = |secs: i64| after(T0, secs + 10);
    let mine = s
        .claim_operations("r1", t(T0), lease(0))
        .await
        .expect("claim");
    assert_eq!(mine.len(), 1);
    assert!(!mine[0].taken_over);
    assert_eq!(
        other
            .claim_operations("r2", after(T0, 5), lease(5))
            .await
            .expect("claim"),
        vec![]
    );
    // r1 renews on each pass and keeps it.
    assert_eq!(
        s.claim_operations("r1", after(T0, 9), lease(9))
            .await
            .expect("renew")
            .len(),
        1
    );
    assert_eq!(
        other
            .claim_operations("r2", after(T0, 15), lease(15))
            .await
            .expect("claim"),
        vec![]
    );
    // r1 stops renewing: r2 takes over once the lease has run out.
    let theirs = other
        .claim_operations("r2", after(T0, 20), lease(20))
        .await
        .expect("claim");
    assert_eq!(theirs.len(), 1);
    assert!(theirs[0].taken_over);
    assert_eq!(
        s.claim_operations("r1", after(T0, 21), lease(21))
            .await
            .expect("claim"),
        vec![]
    );
    // A clean stop lets go at once.
    assert_eq!(other.release_operations("r2").await.expect("release"), 1);
    assert_eq!(
        s.claim_operations("r1", after(T0, 22), lease(22))
            .await
            .expect("claim")
            .len(),
        1
    );
    other.close().await;
}

pub async fn operations_queue_launch_finish(db: &mut TestDb) {
    let s = &db.store;
    let a = s
        .commit(new_incident("#a", vec![declared("#a", T0)]))
        .await
        .expect("a");
    let b = s
        .commit(new_incident("#b", vec![declared("#b", T0)]))
        .await
        .expect("b");

    let mut qb = append(b.incident, 1, vec![note("confirmed", after(T0, 1))]);
    qb.operations = vec![queue("op1", "b-op1")];
    s.commit(qb).await.expect("queue b");
    let mut qa = append(a.incident, 1, vec![note("confirmed", after(T0, 2))]);
    qa.operations = vec![queue("op2", "a-op2"), queue("op1", "a-op1")];
    s.commit(qa).await.expect("queue a");

    let ops = ops_of(s).await;
    let keys: Vec<_> = ops
        .iter()
        .map(|o| (o.incident, o.operation.as_str()))
        .collect();
    assert_eq!(
        keys,
        vec![
            (a.incident, "op1"),
            (a.incident, "op2"),
            (b.incident, "op1")
        ]
    );
    assert_eq!(
        ops[0],
        OperationRow {
            incident: a.incident,
            operation: "op1".into(),
            kind: "restore_latest".into(),
            object_name: "a-op1".into(),
            backend: "sandbox".into(),
            spec: r#"{"id":"op1"}"#.into(),
            status: "queued".into(),
            launched_at: None,
            taken_over: false,
        }
    );

    let mut launch = append(a.incident, 2, vec![note("launched", after(T0, 3))]);
    launch.operations = vec![OperationChange::Launched {
        operation: "op1".into(),
        at: after(T0, 3),
    }];
    s.commit(launch).await.expect("launch");
    let ops = ops_of(s).await;
    assert_eq!(ops[0].status, "launched");
    assert_eq!(ops[0].launched_at, Some(after(T0, 3)));
    assert_eq!(ops[1].status, "queued");

    let mut finish = append(a.incident, 3, vec![note("finished", after(T0, 4))]);
    finish.operations = vec![
        OperationChange::Finished {
            operation: "op1".into(),
            at: after(T0, 4),
        },
        // Finished without having been seen running (failed to launch).
        OperationChange::Finished {
            operation: "op2".into(),
            at: after(T0, 4),
        },
    ];
    s.commit(finish).await.expect("finish");
    let keys: Vec<_> = ops_of(s)
        .await
        .into_iter()
        .map(|o| (o.incident, o.operation))
        .collect();
    assert_eq!(keys, vec![(b.incident, "op1".to_string())]);
}

pub async fn operation_changes_are_checked(db: &mut TestDb) {
    let s = &db.store;
    let a = s
        .commit(new_incident("#a", vec![declared("#a", T0)]))
        .await
        .expect("a");
    let mut q = append(a.incident, 1, vec![note("q", after(T0, 1))]);
    q.operations = vec![queue("op1", "obj-1")];
    s.commit(q).await.expect("queue");

    let mut twice = append(a.incident, 2, vec![note("q again", after(T0, 2))]);
    twice.operations = vec![queue("op1", "obj-other")];
    twice.posts = vec![post("#a", "x", after(T0, 2))];
    assert!(matches!(
        s.commit(twice).await,
        Err(StoreError::Duplicate(_))
    ));

    // The deterministic object name is what stops a second restore being created.
    let b = s
        .commit(new_incident("#b", vec![declared("#b", T0)]))
        .await
        .expect("b");
    let mut same_object = append(b.incident, 1, vec![note("q", after(T0, 2))]);
    same_object.operations = vec![queue("op1", "obj-1")];
    assert!(matches!(
        s.commit(same_object).await,
        Err(StoreError::Duplicate(_))
    ));

    let mut unknown = append(a.incident, 2, vec![note("launch", after(T0, 3))]);
    unknown.operations = vec![OperationChange::Launched {
        operation: "op9".into(),
        at: after(T0, 3),
    }];
    assert!(s.commit(unknown).await.is_err());

    assert_eq!(s.events(a.incident).await.expect("events").len(), 2);
    assert_eq!(s.events(b.incident).await.expect("events").len(), 1);
    assert_eq!(s.pending_posts().await.expect("pending"), 0);
    let ops = ops_of(s).await;
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].object_name, "obj-1");
    assert_eq!(ops[0].status, "queued");
}
