//! Checks of commits and events: ids, sequence numbers, round trips, ordering and
//! conflicts between writers.

use super::*;

pub async fn new_incident_gets_an_id_and_seqs_from_one(db: &mut TestDb) {
    let s = &db.store;
    let events = vec![
        declared("#a", T0),
        note("one", after(T0, 1)),
        note("two", after(T0, 2)),
    ];
    let a = s
        .commit(new_incident("#a", events.clone()))
        .await
        .expect("commit");
    assert_eq!(a.seqs, vec![1, 2, 3]);

    let row = s.incident(a.incident).await.expect("read").expect("exists");
    assert_eq!(row.id, a.incident);
    assert_eq!(row.channel, "#a");
    assert_eq!(row.platform, "slack");
    assert_eq!(row.severity, "sev1");
    assert_eq!(row.incident_type.as_deref(), Some("data"));
    assert_eq!(row.title, "orders database lost");
    assert!(!row.drill);
    assert_eq!(row.declared_at, t(T0));
    assert_eq!(row.resolved_at, None);
    assert!(!row.final_summary_posted);
    assert_eq!(row.last_seq, 3);

    let b = s
        .commit(new_incident("#b", vec![declared("#b", T0)]))
        .await
        .expect("second channel");
    assert_ne!(a.incident, b.incident);
    assert_eq!(b.seqs, vec![1]);

    let more = s
        .commit(append(a.incident, 3, vec![note("three", after(T0, 3))]))
        .await
        .expect("append");
    assert_eq!(
        more,
        drbot::store::Committed {
            incident: a.incident,
            seqs: vec![4]
        }
    );
    assert_eq!(
        s.open_incident_in("#a").await.expect("open"),
        Some(a.incident)
    );
    assert_eq!(s.open_incident_in("#c").await.expect("open"), None);
    assert_eq!(
        s.latest_incident_in("#b").await.expect("latest"),
        Some(b.incident)
    );
    assert_eq!(s.latest_incident_in("#c").await.expect("latest"), None);
    assert_eq!(
        s.incident(b.incident + 1_000_000).await.expect("read"),
        None
    );
    let active: Vec<_> = s
        .active_incidents()
        .await
        .expect("active")
        .iter()
        .map(|a| (a.id, a.seq))
        .collect();
    assert_eq!(active, vec![(a.incident, 4), (b.incident, 1)]);
}

pub async fn next_incident_id_and_a_taken_id(db: &mut TestDb) {
    let s = &db.store;
    assert_eq!(s.next_incident_id().await.expect("next"), 1);
    let a = s
        .commit(new_incident("#a", vec![declared("#a", T0)]))
        .await
        .expect("a");
    assert_eq!(s.next_incident_id().await.expect("next"), a.incident + 1);

    // Two declarations that read the same next id: the loser must retry, whatever channel.
    let mut taken = new_incident("#b", vec![declared("#b", T0)]);
    taken.target = Target::New {
        id: a.incident,
        channel: "#b".into(),
        platform: "slack".into(),
    };
    taken.posts = vec![post("#b", "declared", t(T0))];
    match s.commit(taken).await {
        Err(StoreError::Conflict) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(s.open_incident_in("#b").await.expect("open"), None);
    assert_eq!(s.pending_posts().await.expect("pending"), 0);
    assert_eq!(s.events(a.incident).await.expect("events").len(), 1);

    let b = s
        .commit(Commit {
            target: Target::New {
                id: s.next_incident_id().await.expect("next"),
                channel: "#b".into(),
                platform: "slack".into(),
            },
            ..new_incident("#b", vec![declared("#b", T0)])
        })
        .await
        .expect("retry with a fresh id");
    assert_eq!(b.incident, a.incident + 1);
    assert_eq!(
        s.latest_incident_in("#b").await.expect("latest"),
        Some(b.incident)
    );
}

/// A process that holds the database alone answers "anything after N?" from what its
/// own writer appended: it must still see every append, to incidents made before it took
/// the file and after, and a refused commit must not make it skip a read it needs.
pub async fn a_sole_process_sees_every_append_after_a_sequence_number(db: &mut TestDb) {
    let before = db
        .store
        .commit(new_incident("#before", vec![declared("#before", T0)]))
        .await
        .expect("an incident before the restart");
    db.reopen().await;
    let s = &db.store;
    s.hold_sole_process().await.expect("hold the database");
    assert_eq!(s.events_after(before.incident, 1).await.unwrap(), vec![]);
    s.commit(append(before.incident, 1, vec![note("one", after(T0, 1))]))
        .await
        .expect("append to the older incident");
    let newer = s.events_after(before.incident, 1).await.unwrap();
    assert_eq!(newer.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2]);

    let fresh = s
        .commit(new_incident("#fresh", vec![declared("#fresh", T0)]))
        .await
        .expect("a new incident");
    assert_eq!(s.events_after(fresh.incident, 1).await.unwrap(), vec![]);
    let stale = s
        .commit(append(fresh.incident, 0, vec![note("stale", after(T0, 2))]))
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict)), "{stale:?}");
    s.commit(append(
        fresh.incident,
        1,
        vec![note("two", after(T0, 3)), note("three", after(T0, 4))],
    ))
    .await
    .expect("append to the new incident");
    let newer = s.events_after(fresh.incident, 1).await.unwrap();
    assert_eq!(newer.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    let newer = s.events_after(fresh.incident, 2).await.unwrap();
    assert_eq!(newer.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3]);
    assert_eq!(s.events_after(fresh.incident, 3).await.unwrap(), vec![]);
}

pub async fn events_round_trip_exactly(db: &mut TestDb) {
    let s = &db.store;
    let events = varied_events();
    let (first, rest) = events.split_at(3);
    let a = s
        .commit(new_incident("#inc", first.to_vec()))
        .await
        .expect("commit");
    let b = s
        .commit(append(a.incident, 3, rest.to_vec()))
        .await
        .expect("append");
    assert_eq!(b.seqs, vec![4, 5, 6, 7]);
    let want = expected(a.incident, &[1, 2, 3, 4, 5, 6, 7], &events);
    assert_eq!(s.events(a.incident).await.expect("events"), want);
    assert_eq!(
        s.events(a.incident + 1_000_000).await.expect("events"),
        vec![]
    );
}

/// Group commit: commits queued back to back (the writer may take them in one
/// transaction) each build on the one before; one that is refused writes nothing and the
/// others still land; one built on the refused one fails its sequence check.
pub async fn queued_commits_land_in_order_and_a_refused_one_writes_nothing(db: &mut TestDb) {
    let s = &db.store;
    let a = s
        .commit(new_incident("#g", vec![declared("#g", T0)]))
        .await
        .expect("commit");
    let id = a.incident;
    // All queued before any is awaited.
    let first = s.submit(append(id, 1, vec![note("one", after(T0, 1))]));
    let second = s.submit(append(id, 2, vec![note("two", after(T0, 2))]));
    let mut refused = append(id, 3, vec![note("bad", after(T0, 3))]);
    refused.posts = vec![post("#g", "bad", after(T0, 3))];
    refused.request_key = Some("dup-key".into());
    let mut keyed = append(id, 3, vec![note("three", after(T0, 3))]);
    keyed.request_key = Some("dup-key".into());
    let third = s.submit(keyed);
    let fourth = s.submit(refused);
    let on_refused = s.submit(append(id, 5, vec![note("on bad", after(T0, 4))]));
    let fifth = s.submit(append(id, 4, vec![note("four", after(T0, 5))]));
    assert_eq!(first.await.expect("first").seqs, vec![2]);
    assert_eq!(second.await.expect("second").seqs, vec![3]);
    assert_eq!(third.await.expect("third").seqs, vec![4]);
    match fourth.await {
        Err(StoreError::Conflict | StoreError::Duplicate(_)) => {}
        other => panic!("the stale, duplicate commit must be refused: {other:?}"),
    }
    match on_refused.await {
        Err(StoreError::Conflict) => {}
        other => panic!("built on a refused commit: {other:?}"),
    }
    assert_eq!(fifth.await.expect("fifth").seqs, vec![5]);
    let texts: Vec<String> = s
        .events(id)
        .await
        .expect("events")
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::NoteAdded { text, .. } => Some(text.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["one", "two", "three", "four"]);
    assert_eq!(
        s.pending_posts().await.expect("pending"),
        0,
        "nothing of the refused one"
    );
}

/// A decision made on a commit still in flight is refused when that commit is, even
/// though another writer's events took the commit's place and the sequence number the
/// decision expects is there.
pub async fn a_commit_built_on_a_refused_one_is_refused_where_another_writer_filled_its_place(
    db: &mut TestDb,
) {
    let s = &db.store;
    let id = s
        .commit(new_incident("#c", vec![declared("#c", T0)]))
        .await
        .expect("commit")
        .incident;
    // Another replica's note lands at seq 2 first; ours, expecting seq 1, is refused.
    let theirs = s.submit(append(id, 1, vec![note("theirs", after(T0, 1))]));
    let mine = append(id, 1, vec![note("mine", after(T0, 2))]);
    let mine_chain = mine.chain;
    let refused = s.submit(mine);
    let mut on_mine = append(id, 2, vec![note("on mine", after(T0, 3))]);
    on_mine.chain = Chain::on(Some(mine_chain.token));
    let built_on_refused = s.submit(on_mine);
    assert_eq!(theirs.await.expect("theirs").seqs, vec![2]);
    assert!(matches!(refused.await, Err(StoreError::Conflict)));
    match built_on_refused.await {
        Err(StoreError::Conflict) => {}
        other => panic!("landed on events it was not decided on: {other:?}"),
    }
    // Decided again on what the store holds, it lands.
    let again = s.commit(append(id, 2, vec![note("on theirs", after(T0, 3))]));
    assert_eq!(again.await.expect("again").seqs, vec![3]);
    assert_eq!(s.events(id).await.expect("events").len(), 3);
}

pub async fn stale_expected_seq_conflicts_and_writes_nothing(db: &mut TestDb) {
    let s = &db.store;
    let a = s
        .commit(new_incident(
            "#a",
            vec![declared("#a", T0), note("x", after(T0, 1))],
        ))
        .await
        .expect("commit");
    let mut ok = append(a.incident, 2, vec![note("y", after(T0, 2))]);
    ok.posts = vec![post("#a", "y", after(T0, 2))];
    ok.operations = vec![queue("op1", "obj-1")];
    s.commit(ok).await.expect("append");

    let before_events = s.events(a.incident).await.expect("events");
    let before_row = s.incident(a.incident).await.expect("read");
    let before_ops = ops_of(s).await;
    assert_eq!(before_events.len(), 3);
    assert_eq!(s.pending_posts().await.expect("pending"), 1);

    // Decided on the state at seq 2, but seq 3 has been written since.
    let mut stale = append(a.incident, 2, vec![note("late", after(T0, 9))]);
    stale.posts = vec![post("#a", "late", after(T0, 9))];
    stale.operations = vec![
        queue("op2", "obj-2"),
        OperationChange::Launched {
            operation: "op1".into(),
            at: after(T0, 9),
        },
    ];
    stale.projection = Projection {
        title: "changed".into(),
        ..resolved(after(T0, 9))
    };
    match s.commit(stale).await {
        Err(StoreError::Conflict) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(s.events(a.incident).await.expect("events"), before_events);
    assert_eq!(s.incident(a.incident).await.expect("read"), before_row);
    assert_eq!(ops_of(s).await, before_ops);
    assert_eq!(s.pending_posts().await.expect("pending"), 1);

    // Ahead of the store is a conflict too.
    match s
        .commit(append(a.incident, 7, vec![note("z", after(T0, 9))]))
        .await
    {
        Err(StoreError::Conflict) => {}
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(s.events(a.incident).await.expect("events"), before_events);
}

pub async fn concurrent_appends_one_wins(db: &mut TestDb) {
    let s = &db.store;
    let a = s
        .commit(new_incident("#race", vec![declared("#race", T0)]))
        .await
        .expect("commit");
    for round in 0..5_i64 {
        let seq = 1 + round;
        let mk = |who: &str| {
            let mut c = append(a.incident, seq, vec![note(who, after(T0, seq))]);
            c.posts = vec![post("#race", who, after(T0, seq))];
            c
        };
        let (x, y) = tokio::join!(s.commit(mk("x")), s.commit(mk("y")));
        let wins = [&x, &y].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {x:?} / {y:?}");
        for r in [x, y] {
            match r {
                Ok(c) => assert_eq!(c.seqs, vec![seq + 1]),
                Err(StoreError::Conflict) => {}
                Err(e) => panic!("round {round}: {e}"),
            }
        }
    }
    let events = s.events(a.incident).await.expect("events");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    assert_eq!(s.pending_posts().await.expect("pending"), 5);
}

pub async fn unknown_incident_is_not_a_conflict(db: &mut TestDb) {
    // A retry loop on Conflict would spin forever on an incident that does not exist.
    match db
        .store
        .commit(append(4242, 0, vec![note("x", t(T0))]))
        .await
    {
        Err(StoreError::Conflict) | Ok(_) => panic!("unknown incident accepted or retryable"),
        Err(_) => {}
    }
    assert_eq!(db.store.pending_posts().await.expect("pending"), 0);
}
