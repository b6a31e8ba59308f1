//! Checks of incident rows and what reads give back: dedupe and request keys, one open
//! incident per channel, listings, streaming, reopening, and refused or corrupt data.

use super::*;

pub async fn duplicate_dedupe_key_rolls_back_the_whole_commit(db: &mut TestDb) {
    let s = &db.store;
    let a = s
        .commit(new_incident("#a", vec![declared("#a", T0)]))
        .await
        .expect("commit");
    let mut first = append(
        a.incident,
        1,
        vec![
            keyed(note("10:15 update", after(T0, 900)), "slot:10:15"),
            // Events without a key never collide with each other.
            note("plain", after(T0, 901)),
            note("plain", after(T0, 901)),
        ],
    );
    first.posts = vec![post("#a", "update", after(T0, 900))];
    s.commit(first).await.expect("first slot");
    let before = s.events(a.incident).await.expect("events");

    let mut again = append(
        a.incident,
        4,
        vec![
            note("before the duplicate", after(T0, 905)),
            keyed(note("10:15 update again", after(T0, 905)), "slot:10:15"),
        ],
    );
    again.posts = vec![post("#a", "update again", after(T0, 905))];
    again.operations = vec![queue("op1", "obj-1")];
    match s.commit(again).await {
        Err(StoreError::Duplicate(key)) => assert_eq!(key, "slot:10:15"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(s.events(a.incident).await.expect("events"), before);
    assert_eq!(s.pending_posts().await.expect("pending"), 1);
    assert_eq!(ops_of(s).await, vec![]);
    assert_eq!(
        s.incident(a.incident)
            .await
            .expect("read")
            .expect("row")
            .last_seq,
        4
    );

    // The same key twice within one commit is a duplicate as well.
    match s
        .commit(append(
            a.incident,
            4,
            vec![
                keyed(note("r", after(T0, 906)), "reminder:10:30"),
                keyed(note("r", after(T0, 906)), "reminder:10:30"),
            ],
        ))
        .await
    {
        Err(StoreError::Duplicate(key)) => assert_eq!(key, "reminder:10:30"),
        other => panic!("expected a duplicate, got {other:?}"),
    }

    // Keys are per incident.
    let b = s
        .commit(new_incident("#b", vec![declared("#b", T0)]))
        .await
        .expect("other incident");
    s.commit(append(
        b.incident,
        1,
        vec![keyed(note("10:15 update", after(T0, 900)), "slot:10:15")],
    ))
    .await
    .expect("same key, other incident");
}

pub async fn one_open_incident_per_channel(db: &mut TestDb) {
    let s = &db.store;
    let a = s
        .commit(new_incident("#a", vec![declared("#a", T0)]))
        .await
        .expect("first");
    let mut second = new_incident("#a", vec![declared("#a", T0)]);
    second.posts = vec![post("#a", "declared", t(T0))];
    match s.commit(second).await {
        Err(StoreError::OpenIncidentExists(ch)) => assert_eq!(ch, "#a"),
        other => panic!("expected OpenIncidentExists, got {other:?}"),
    }
    assert_eq!(s.pending_posts().await.expect("pending"), 0);
    assert_eq!(
        s.latest_incident_in("#a").await.expect("latest"),
        Some(a.incident)
    );

    let mut resolve = append(a.incident, 1, vec![note("resolved", after(T0, 60))]);
    resolve.projection = resolved(after(T0, 60));
    s.commit(resolve).await.expect("resolve");
    assert_eq!(s.open_incident_in("#a").await.expect("open"), None);
    assert_eq!(
        s.incident(a.incident)
            .await
            .expect("read")
            .expect("row")
            .resolved_at,
        Some(after(T0, 60))
    );

    let b = s
        .commit(new_incident("#a", vec![declared("#a", T0)]))
        .await
        .expect("new incident after the first was resolved");
    assert!(b.incident > a.incident);
    assert_eq!(
        s.open_incident_in("#a").await.expect("open"),
        Some(b.incident)
    );
    assert_eq!(
        s.latest_incident_in("#a").await.expect("latest"),
        Some(b.incident)
    );

    // Reopening the first while the second is open is refused by the database too.
    let reopen = append(a.incident, 2, vec![note("reopen", after(T0, 120))]);
    match s.commit(reopen).await {
        Err(StoreError::OpenIncidentExists(ch)) => assert_eq!(ch, "#a"),
        other => panic!("expected OpenIncidentExists, got {other:?}"),
    }
    assert_eq!(s.events(a.incident).await.expect("events").len(), 2);
}

pub async fn active_incidents_include_owed_summaries(db: &mut TestDb) {
    let s = &db.store;
    let open = s
        .commit(new_incident("#open", vec![declared("#open", T0)]))
        .await
        .expect("open");
    let owed = s
        .commit(Commit {
            projection: resolved(after(T0, 10)),
            request_key: None,
            gave_up: None,
            ..new_incident("#owed", vec![declared("#owed", T0)])
        })
        .await
        .expect("owed");
    let done = s
        .commit(Commit {
            projection: Projection {
                final_summary_posted: true,
                ..resolved(after(T0, 10))
            },
            ..new_incident("#done", vec![declared("#done", T0)])
        })
        .await
        .expect("done");
    let active: Vec<_> = s
        .active_incidents()
        .await
        .expect("active")
        .iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(active, vec![open.incident, owed.incident]);
    assert!(!active.contains(&done.incident));

    let mut summary = append(owed.incident, 1, vec![note("summary", after(T0, 20))]);
    summary.projection = Projection {
        final_summary_posted: true,
        ..resolved(after(T0, 10))
    };
    s.commit(summary).await.expect("summary");
    assert_eq!(
        s.active_incidents().await.expect("active"),
        vec![drbot::store::ActiveIncident {
            id: open.incident,
            seq: 1
        }]
    );
    let row = s.incident(owed.incident).await.expect("read").expect("row");
    assert!(row.final_summary_posted);
}

pub async fn nul_is_refused_before_anything_is_written(db: &mut TestDb) {
    let s = &db.store;
    let mut title = new_incident("#n", vec![declared("#n", T0)]);
    title.projection.title = "orders\0wiped".into();
    assert!(matches!(
        s.commit(title).await,
        Err(StoreError::Unstorable(_))
    ));
    let mut actor = new_incident("#n", vec![declared("#n", T0)]);
    actor.events[0].actor.name = "al\0ice".into();
    assert!(matches!(
        s.commit(actor).await,
        Err(StoreError::Unstorable(_))
    ));
    let mut key = new_incident("#n", vec![declared("#n", T0)]);
    key.request_key = Some("slack:\0".into());
    assert!(matches!(
        s.commit(key).await,
        Err(StoreError::Unstorable(_))
    ));
    assert!(matches!(
        s.commit(new_incident("#\0", vec![declared("#\0", T0)]))
            .await,
        Err(StoreError::Unstorable(_))
    ));
    // Lookups with NUL find nothing rather than fail.
    assert_eq!(s.open_incident_in("#\0").await.expect("lookup"), None);
    assert!(!s.request_seen("k\0").await.expect("lookup"));
    // NUL inside an event's text is stored (JSON escapes it) and comes back intact.
    let a = s
        .commit(new_incident("#n", vec![declared("#n", T0)]))
        .await
        .expect("declare");
    s.commit(append(a.incident, 1, vec![note("a\0b", after(T0, 1))]))
        .await
        .expect("note");
    let events = s.events(a.incident).await.expect("events");
    assert!(matches!(&events[1].kind, EventKind::NoteAdded { text } if text == "a\0b"));
}

pub async fn drill_incidents_are_listed(db: &mut TestDb) {
    let s = &db.store;
    let real = s
        .commit(new_incident("#a", vec![declared("#a", T0)]))
        .await
        .expect("real");
    let mut drill = new_incident("#b", vec![declared("#b", T0)]);
    if let EventKind::Declared { drill: d, .. } = &mut drill.events[0].kind {
        *d = true;
    }
    drill.projection.drill = true;
    let drill = s.commit(drill).await.expect("drill");
    assert_ne!(real.incident, drill.incident);
    assert_eq!(
        s.drill_incidents().await.expect("drills"),
        vec![drill.incident]
    );
}

pub async fn request_keys_make_a_commit_happen_once(db: &mut TestDb) {
    let s = &db.store;
    let mut c = new_incident("#k", vec![declared("#k", T0)]);
    c.request_key = Some("slack:trigger:1".into());
    c.posts = vec![post("#k", r#"{"text":"declared"}"#, t(T0))];
    let a = s.commit(c).await.expect("first");
    assert!(s.request_seen("slack:trigger:1").await.expect("seen"));
    assert!(!s.request_seen("slack:trigger:2").await.expect("seen"));

    let mut again = append(a.incident, 1, vec![note("twice", after(T0, 1))]);
    again.request_key = Some("slack:trigger:1".into());
    again.posts = vec![post("#k", r#"{"text":"twice"}"#, after(T0, 1))];
    match s.commit(again).await {
        Err(StoreError::Duplicate(what)) => assert!(what.contains("slack:trigger:1"), "{what}"),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // The refused commit wrote nothing: one event, one post.
    assert_eq!(s.events(a.incident).await.expect("events").len(), 1);
    assert_eq!(s.outbox_backlog().await.expect("backlog").0, 1);

    assert_eq!(s.forget_requests(t(T0)).await.expect("keep"), 0);
    assert_eq!(s.forget_requests(after(T0, 1)).await.expect("forget"), 1);
    assert!(!s.request_seen("slack:trigger:1").await.expect("seen"));
}

pub async fn stream_events_matches_events(db: &mut TestDb) {
    let s = &db.store;
    let a = s
        .commit(new_incident("#a", varied_events()))
        .await
        .expect("commit");
    let mut seq = 7;
    for batch in 0..4 {
        let events = (0..250)
            .map(|i| note(&format!("note {batch}/{i}"), after(T0, seq + i)))
            .collect();
        let done = s
            .commit(append(a.incident, seq, events))
            .await
            .expect("batch");
        seq = *done.seqs.last().expect("seqs");
    }
    assert_eq!(seq, 1007);
    let listed = s.events(a.incident).await.expect("events");
    let streamed: Vec<Event> = s
        .stream_events(a.incident)
        .map(|e| e.expect("streamed event"))
        .collect()
        .await;
    assert_eq!(listed.len(), 1007);
    assert_eq!(streamed, listed);
    assert_eq!(
        streamed.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=1007).collect::<Vec<_>>()
    );
    assert_eq!(s.stream_events(a.incident + 1).count().await, 0);
}

pub async fn reopening_keeps_everything(db: &mut TestDb) {
    let events = varied_events();
    let mut c = new_incident("#a", events.clone());
    c.posts = vec![post("#a", "one", t(T0)), post("#a", "two", t(T0))];
    c.operations = vec![queue("op1", "obj-1")];
    let a = db.store.commit(c).await.expect("commit");
    let due = claim(&db.store, "w1", t(T0)).await;
    assert!(
        db.store
            .record_delivery(&due[0], t(T0), "r")
            .await
            .expect("delivered")
    );
    let row = db.store.incident(a.incident).await.expect("read");
    let ops = ops_of(&db.store).await;

    db.reopen().await;
    let s = &db.store;
    assert_eq!(
        s.events(a.incident).await.expect("events"),
        expected(a.incident, &a.seqs, &events)
    );
    assert_eq!(s.incident(a.incident).await.expect("read"), row);
    assert_eq!(ops_of(s).await, ops);
    assert_eq!(s.pending_posts().await.expect("pending"), 1);
    // The second post comes next, to a new claim after the restart.
    let next = claim(s, "w2", t(T0)).await;
    assert_eq!(
        next.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(),
        vec!["two"]
    );
    assert_eq!(
        s.open_incident_in("#a").await.expect("open"),
        Some(a.incident)
    );

    // And it goes on from where it was.
    let more = s
        .commit(append(
            a.incident,
            7,
            vec![note("after restart", after(T0, 999))],
        ))
        .await
        .expect("append after restart");
    assert_eq!(more.seqs, vec![8]);
    let b = s
        .commit(new_incident("#b", vec![declared("#b", T0)]))
        .await
        .expect("new after restart");
    assert!(b.incident > a.incident);
}

pub async fn corrupt_payload_is_reported(db: &mut TestDb) {
    let s = &db.store;
    let a = s
        .commit(new_incident(
            "#a",
            vec![declared("#a", T0), note("x", t(T0))],
        ))
        .await
        .expect("commit");
    let damage = "UPDATE events SET data = '{not json' WHERE incident_id = $1 AND seq = 2";
    match db.url.strip_prefix("sqlite://") {
        Some(path) => {
            let conn = rusqlite::Connection::open(path).expect("raw connection");
            conn.execute(&damage.replace('$', "?"), [a.incident])
                .expect("damage a row");
        }
        None => {
            let mut conn = sqlx::PgConnection::connect(&db.url)
                .await
                .expect("raw connection");
            sqlx::query(damage)
                .bind(a.incident)
                .execute(&mut conn)
                .await
                .expect("damage a row");
            let _ = conn.close().await;
        }
    }
    assert!(matches!(
        s.events(a.incident).await,
        Err(StoreError::Corrupt(_))
    ));
    let streamed: Vec<_> = s.stream_events(a.incident).collect().await;
    assert!(streamed[0].is_ok());
    assert!(matches!(streamed[1], Err(StoreError::Corrupt(_))));
}
