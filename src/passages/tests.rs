use super::*;

fn turn(speaker: &str, start_ms: u64, end_ms: u64, text: &str) -> TextTurn {
    TextTurn {
        speaker: speaker.into(),
        start_ms,
        end_ms,
        text: text.into(),
    }
}

fn focus_group() -> Transcript {
    transcript_from_turns(
        "grupo",
        "es",
        &[
            turn("MOD", 0, 4000, "Buenas tardes. ¿Qué opinan del precio?"),
            turn(
                "ANA",
                4000,
                9000,
                "El envío es carísimo y ya no compensa pedir.",
            ),
            turn("LUIS", 9000, 10000, "Sí, claro."),
            turn("MOD", 10000, 13000, "¿Y la atención al cliente?"),
            turn(
                "LUIS",
                13000,
                18000,
                "Nunca contestan cuando hay un problema con el pedido.",
            ),
            turn("ANA", 18000, 19000, "Yo pienso lo mismo."),
        ],
    )
}

/// Every passage is its transcript's canonical text at its offsets, by bytes and by chars.
fn assert_exact(t: &Transcript, passages: &Passages) {
    let text = t.text();
    for p in &passages.passages {
        assert_eq!(&text[p.span.byte_start..p.span.byte_end], p.text);
        let by_chars: String = text
            .chars()
            .skip(p.span.char_start)
            .take(p.span.char_end - p.span.char_start)
            .collect();
        assert_eq!(by_chars, p.text);
    }
}

#[test]
fn one_passage_per_turn_with_exact_offsets_and_word_times() {
    let t = focus_group();
    let p = split(std::slice::from_ref(&t), &PassageConfig::default()).unwrap();
    assert_eq!(p.passages.len(), 6);
    assert_exact(&t, &p);
    let ana = &p.passages[1];
    assert_eq!(ana.speaker.as_deref(), Some("ANA"));
    assert_eq!(ana.text, "El envío es carísimo y ya no compensa pedir.");
    assert_eq!((ana.start_ms, ana.end_ms), (4000, 9000));
    assert_eq!(ana.words, 9);
    assert_eq!(ana.turn, 1);
    assert!(p.passages.iter().enumerate().all(|(i, x)| x.id == i));
}

#[test]
fn consecutive_segments_of_one_speaker_are_one_turn() {
    let t = transcript_from_turns(
        "x",
        "es",
        &[
            turn("A", 0, 1000, "Primera frase."),
            turn("A", 1000, 2000, "Segunda frase."),
            turn("B", 2000, 3000, "Otra persona habla de otra cosa."),
        ],
    );
    let p = split(std::slice::from_ref(&t), &PassageConfig::default()).unwrap();
    assert_eq!(p.passages.len(), 2);
    assert_eq!(p.passages[0].text, "Primera frase. Segunda frase.");
    assert_eq!((p.passages[0].start_ms, p.passages[0].end_ms), (0, 2000));
    assert_exact(&t, &p);
}

#[test]
fn moderator_is_the_speaker_asking_most_questions() {
    let t = focus_group();
    let p = split(std::slice::from_ref(&t), &PassageConfig::default()).unwrap();
    assert_eq!(p.files[0].moderator.as_deref(), Some("MOD"));
    let roles: Vec<Role> = p.passages.iter().map(|x| x.role).collect();
    assert_eq!(
        roles,
        [
            Role::Moderator,
            Role::Content,
            Role::BackChannel,
            Role::Moderator,
            Role::Content,
            Role::BackChannel
        ]
    );
    assert_eq!(p.content().count(), 2);
}

#[test]
fn moderator_can_be_named_and_must_exist() {
    let t = focus_group();
    let cfg = PassageConfig {
        moderator: Some("ANA".into()),
        ..PassageConfig::default()
    };
    let p = split(std::slice::from_ref(&t), &cfg).unwrap();
    assert_eq!(p.passages[1].role, Role::Moderator);
    assert_eq!(
        p.passages[0].role,
        Role::Content,
        "MOD is a participant now"
    );
    let cfg = PassageConfig {
        moderator: Some("NADIE".into()),
        ..PassageConfig::default()
    };
    assert!(matches!(
        split(&[t], &cfg),
        Err(PassageError::UnknownModerator { .. })
    ));
}

#[test]
fn back_channel_is_short_agreement_only() {
    for s in [
        "Sí.",
        "Claro, claro.",
        "Yo pienso lo mismo.",
        "¡Exacto!",
        "Ajá",
        "Yeah, right.",
        "Concordo.",
    ] {
        assert!(is_back_channel(s), "{s}");
    }
    for s in [
        "Los viernes es imposible, sí.",
        "Sí, me preocupa mucho el plástico.",
        "Eso es verdad. La semana pasada me llegó el pedido equivocado.",
        "",
    ] {
        assert!(!is_back_channel(s), "{s}");
    }
}

#[test]
fn long_turns_are_cut_at_sentence_ends_into_bounded_pieces() {
    let sentence = "Esta es una frase de prueba con exactamente trece palabras en total aquí.";
    let long: Vec<&str> = std::iter::repeat_n(sentence, 25).collect(); // 325 words
    let t = transcript_from_turns("x", "es", &[turn("A", 0, 300_000, &long.join(" "))]);
    let p = split(std::slice::from_ref(&t), &PassageConfig::default()).unwrap();
    assert_exact(&t, &p);
    assert_eq!(p.passages.len(), 3);
    for x in &p.passages {
        assert!((20..=120).contains(&x.words), "{} words", x.words);
        assert!(x.text.ends_with('.'), "cut inside a sentence");
    }
    assert_eq!(p.passages.iter().map(|x| x.words).sum::<usize>(), 325);
    assert!(p.passages.windows(2).all(|w| w[0].end_ms <= w[1].start_ms));
}

#[test]
fn a_sentence_longer_than_the_limit_is_cut_between_words() {
    let long = vec!["palabra"; 250].join(" ");
    let t = transcript_from_turns("x", "es", &[turn("A", 0, 250_000, &long)]);
    let p = split(std::slice::from_ref(&t), &PassageConfig::default()).unwrap();
    assert_exact(&t, &p);
    assert!(p.passages.iter().all(|x| x.words <= 120 && x.words >= 20));
    assert_eq!(p.passages.iter().map(|x| x.words).sum::<usize>(), 250);
}

#[test]
fn tokens_take_proportional_word_times_when_counts_differ() {
    let mut t = transcript_from_turns("x", "es", &[turn("A", 0, 4000, "uno dos tres cuatro")]);
    // Whisper-style word list that splits differently from the text.
    t.segments[0].words.truncate(2);
    t.segments[0].words[1].end_ms = 4000;
    let p = split(std::slice::from_ref(&t), &PassageConfig::default()).unwrap();
    assert_eq!(p.passages[0].start_ms, t.segments[0].words[0].start_ms);
    assert_eq!(p.passages[0].end_ms, 4000);
}

#[test]
fn several_files_keep_their_own_moderator_and_need_distinct_uris() {
    let a = focus_group();
    let mut b = focus_group();
    b.uri = "otro".into();
    let p = split(&[a.clone(), b], &PassageConfig::default()).unwrap();
    assert_eq!(p.files.len(), 2);
    assert_eq!(p.passages.len(), 12);
    assert_eq!(p.passages[6].file, 1);
    assert_eq!(p.passages[6].uri, "otro");
    assert!(matches!(
        split(&[a.clone(), a], &PassageConfig::default()),
        Err(PassageError::DuplicateUri { .. })
    ));
}

#[test]
fn one_speaker_or_no_questions_means_no_moderator() {
    let t = transcript_from_turns("x", "es", &[turn("A", 0, 1000, "¿Hola? ¿Qué tal?")]);
    let p = split(&[t], &PassageConfig::default()).unwrap();
    assert_eq!(p.files[0].moderator, None);
    assert_eq!(p.passages[0].role, Role::Content);
}

#[test]
fn without_question_marks_interrogative_openings_find_the_moderator() {
    let t = transcript_from_turns(
        "x",
        "es",
        &[
            turn(
                "MOD",
                0,
                1000,
                "Para empezar, que es lo primero que piensan.",
            ),
            turn("ANA", 1000, 2000, "Lo que pienso es el precio."),
            turn("MOD", 2000, 3000, "Y que opinan de los tiempos de entrega."),
            turn("LUIS", 3000, 4000, "Llega tarde porque hay mucho tráfico."),
        ],
    );
    let p = split(&[t], &PassageConfig::default()).unwrap();
    assert_eq!(p.files[0].moderator.as_deref(), Some("MOD"));
}
