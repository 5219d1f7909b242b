use super::kmeans::SplitMix64;
use super::*;
use crate::passages::{Passage, Passages, Role, TextSpan};

/// `n` passages; roles as given; speakers cycle through A, B, C.
fn passages(roles: &[Role]) -> Passages {
    let passages = roles
        .iter()
        .enumerate()
        .map(|(id, &role)| Passage {
            id,
            file: 0,
            uri: "f".into(),
            speaker: Some(["A", "B", "C"][id % 3].into()),
            turn: id,
            role,
            start_ms: id as u64 * 1000,
            end_ms: id as u64 * 1000 + 900,
            span: TextSpan {
                byte_start: 0,
                byte_end: 0,
                char_start: 0,
                char_end: 0,
            },
            text: format!("p{id}"),
            words: 1,
        })
        .collect();
    Passages {
        passages,
        files: Vec::new(),
    }
}

/// Vectors like e5's: a large shared component plus a cluster direction and noise, so raw
/// cosines all sit in a narrow band near 1.
fn planted(clusters: &[usize], dim: usize, noise: f32, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = SplitMix64::new(seed);
    clusters
        .iter()
        .map(|&c| {
            let mut v: Vec<f32> = (0..dim)
                .map(|_| (rng.next_f64() as f32 - 0.5) * noise)
                .collect();
            v[0] += 4.0;
            v[1 + c] += 1.0;
            normalise(&mut v);
            v
        })
        .collect()
}

fn content_of(p: &Passages, vectors: &[Vec<f32>]) -> ContentEmbeddings {
    let ids: Vec<usize> = p.content().map(|p| p.id).collect();
    ContentEmbeddings {
        vectors: Matrix::from_rows(&ids.iter().map(|&i| vectors[i].clone()).collect::<Vec<_>>())
            .unwrap(),
        passage_ids: ids,
    }
}

/// Every pair of passages with the same planted cluster shares a theme, and vice versa.
fn same_partition(themes: &Themes, truth: &[usize]) -> bool {
    let a = themes.assignment();
    (0..truth.len()).all(|i| {
        (0..truth.len()).all(|j| (truth[i] == truth[j]) == (a[i].is_some() && a[i] == a[j]))
    })
}

#[test]
fn finds_the_planted_number_of_themes() {
    let truth: Vec<usize> = (0..40).map(|i| i % 4).collect();
    let p = passages(&[Role::Content; 40]);
    let v = planted(&truth, 24, 0.5, 1);
    let t = discover(
        &p,
        &content_of(&p, &v),
        &Matrix::with_dim(24),
        &ThemeConfig::default(),
    )
    .unwrap();
    assert_eq!(t.k_choice.k, 4, "silhouettes {:?}", t.k_choice.silhouettes);
    assert!(same_partition(&t, &truth));
    assert!(t.unassigned.is_empty());
}

#[test]
fn theme_count_can_be_forced() {
    let truth: Vec<usize> = (0..40).map(|i| i % 4).collect();
    let p = passages(&[Role::Content; 40]);
    let v = planted(&truth, 24, 0.5, 1);
    let cfg = ThemeConfig {
        themes: Some(2),
        ..ThemeConfig::default()
    };
    let t = discover(&p, &content_of(&p, &v), &Matrix::with_dim(24), &cfg).unwrap();
    assert_eq!(t.themes.len(), 2);
    assert!(!t.k_choice.automatic);
}

#[test]
fn identical_input_gives_identical_themes() {
    let truth: Vec<usize> = (0..60).map(|i| (i * 7) % 5).collect();
    let p = passages(&[Role::Content; 60]);
    let v = planted(&truth, 32, 1.5, 3);
    let c = content_of(&p, &v);
    let cfg = ThemeConfig::default();
    let a = discover(&p, &c, &Matrix::with_dim(32), &cfg).unwrap();
    let b = discover(&p, &c, &Matrix::with_dim(32), &cfg).unwrap();
    assert_eq!(a, b);
}

#[test]
fn only_content_passages_are_clustered() {
    let mut roles = vec![Role::Content; 20];
    roles[3] = Role::Moderator;
    roles[8] = Role::BackChannel;
    let truth: Vec<usize> = (0..20).map(|i| i % 2).collect();
    let p = passages(&roles);
    let v = planted(&truth, 16, 0.3, 5);
    let t = discover(
        &p,
        &content_of(&p, &v),
        &Matrix::with_dim(16),
        &ThemeConfig::default(),
    )
    .unwrap();
    let a = t.assignment();
    assert_eq!(a[3], None);
    assert_eq!(a[8], None);
    assert!(!t.unassigned.contains(&3) && !t.unassigned.contains(&8));
    assert_eq!(t.content_count(), 18);
}

#[test]
fn embeddings_of_non_content_passages_are_refused() {
    let mut roles = vec![Role::Content; 4];
    roles[1] = Role::Moderator;
    let p = passages(&roles);
    let v = planted(&[0, 0, 1, 1], 8, 0.1, 1);
    let bad = ContentEmbeddings {
        passage_ids: vec![0, 1, 2, 3],
        vectors: Matrix::from_rows(&v).unwrap(),
    };
    assert!(matches!(
        discover(&p, &bad, &Matrix::with_dim(8), &ThemeConfig::default()),
        Err(ThemeError::NotContent { row: 1, passage: 1 })
    ));
}

#[test]
fn a_far_outlier_is_unassigned_and_reported() {
    let mut truth: Vec<usize> = (0..30).map(|i| i % 3).collect();
    truth.push(9); // alone in its own direction
    let p = passages(&[Role::Content; 31]);
    let v = planted(&truth, 16, 0.3, 7);
    let t = discover(
        &p,
        &content_of(&p, &v),
        &Matrix::with_dim(16),
        &ThemeConfig::default(),
    )
    .unwrap();
    assert_eq!(t.unassigned, vec![30]);
    assert!((t.unassigned_share() - 1.0 / 31.0).abs() < 1e-9);
    assert_eq!(t.themes.len(), 3);
}

#[test]
fn seed_codes_take_their_passages_and_the_rest_is_clustered() {
    let truth: Vec<usize> = (0..40).map(|i| i % 4).collect();
    let p = passages(&[Role::Content; 40]);
    let v = planted(&truth, 24, 0.2, 1);
    // Seed vectors point at planted clusters 2 and 0.
    let seeds = Matrix::from_rows(&planted(&[2, 0], 24, 0.0, 1)).unwrap();
    let t = discover(&p, &content_of(&p, &v), &seeds, &ThemeConfig::default()).unwrap();
    assert_eq!(t.themes[0].seed, Some(0));
    assert_eq!(t.themes[1].seed, Some(1));
    let members = |c: usize| (0..40).filter(|i| truth[*i] == c).collect::<Vec<_>>();
    assert_eq!(t.themes[0].members, members(2));
    assert_eq!(t.themes[1].members, members(0));
    assert!(same_partition(&t, &truth));
    assert!(t.themes[2..].iter().all(|th| th.seed.is_none()));
}

#[test]
fn merge_split_and_move_revise_themes() {
    let truth: Vec<usize> = (0..30).map(|i| i % 3).collect();
    let p = passages(&[Role::Content; 30]);
    let v = planted(&truth, 16, 0.3, 2);
    let mut t = discover(
        &p,
        &content_of(&p, &v),
        &Matrix::with_dim(16),
        &ThemeConfig::default(),
    )
    .unwrap();
    assert_eq!(t.themes.len(), 3);
    let a_first = t.themes[0].members[0];
    let b_first = t.themes[2].members[0];
    t.merge(0, 2).unwrap();
    assert_eq!(t.themes.len(), 2);
    assert_eq!(t.themes[0].members.len(), 20);
    assert_eq!(t.theme_of(a_first), Some(0));
    assert_eq!(t.theme_of(b_first), Some(0));

    t.split(0, 2).unwrap();
    assert_eq!(t.themes.len(), 3);
    assert!(same_partition(&t, &truth), "split undoes the merge");

    let p0 = t.themes[1].members[0];
    t.move_passage(p0, Some(2)).unwrap();
    assert_eq!(t.theme_of(p0), Some(2));
    t.move_passage(p0, None).unwrap();
    assert_eq!(t.theme_of(p0), None);
    assert!(t.unassigned.contains(&p0));

    assert!(matches!(t.merge(1, 1), Err(ThemeError::SelfMerge { .. })));
    assert!(matches!(t.split(0, 1), Err(ThemeError::BadSplit { .. })));
    assert!(matches!(
        t.move_passage(0, Some(9)),
        Err(ThemeError::UnknownTheme { .. })
    ));
    assert!(matches!(
        t.move_passage(99, None),
        Err(ThemeError::NotClustered { .. })
    ));
}

#[test]
fn summaries_count_per_file_and_per_speaker() {
    let truth: Vec<usize> = (0..12).map(|i| i % 2).collect();
    let mut roles = vec![Role::Content; 12];
    roles[0] = Role::Moderator;
    let p = passages(&roles);
    let v = planted(&truth, 8, 0.2, 4);
    let t = discover(
        &p,
        &content_of(&p, &v),
        &Matrix::with_dim(8),
        &ThemeConfig::default(),
    )
    .unwrap();
    let files = t.by_file(&p);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].passages, 12);
    assert_eq!(files[0].content, 11);
    assert_eq!(
        files[0].per_theme.iter().sum::<usize>() + files[0].unassigned,
        11
    );
    let speakers = t.by_speaker(&p);
    assert_eq!(
        speakers
            .iter()
            .map(|s| s.speaker.clone().unwrap())
            .collect::<Vec<_>>(),
        ["A", "B", "C"]
    );
    assert_eq!(speakers[0].passages, 4);
    assert_eq!(
        speakers[0].content, 3,
        "A's first passage is the moderator's"
    );
}

/// A fake embedder: one planted vector per distinct text.
struct Planted;

impl PassageEmbedder for Planted {
    type Error = std::io::Error;
    fn embed_passages(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Self::Error> {
        let clusters: Vec<usize> = texts
            .iter()
            .map(|t| t.trim_start_matches('p').parse::<usize>().unwrap_or(0) % 2)
            .collect();
        Ok(planted(&clusters, 8, 0.2, 1))
    }
    fn embed_queries(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Self::Error> {
        Err(std::io::Error::other(format!(
            "{} queries refused",
            texts.len()
        )))
    }
}

#[test]
fn run_embeds_content_only_and_passes_embedder_errors_on() {
    let p = passages(&[Role::Content; 10]);
    let t = run(&p, &Planted, &[], &ThemeConfig::default()).unwrap();
    assert_eq!(t.themes.len(), 2);
    let seeds = vec![("x".to_string(), "y".to_string())];
    assert!(matches!(
        run(&p, &Planted, &seeds, &ThemeConfig::default()),
        Err(ThemeError::Embed {
            what: "seed codes",
            ..
        })
    ));
}
