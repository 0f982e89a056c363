//! Property tests over random ids, entropies and configurations, for every scheme.

use blt_patching::{
    ByteTokenizer, EncodeOptions, NgramHasher, Patcher, PatcherConfig, Patches, PatchingScheme,
    id_to_byte,
};
use proptest::prelude::*;

/// Ids: mostly text-like bytes, some arbitrary bytes, specials and out-of-vocabulary ids.
fn id() -> impl Strategy<Value = u32> {
    prop_oneof![
        6 => prop::sample::select(b"ab Zz09 ,.\n\xc3\xa9\x80".to_vec()).prop_map(|b| u32::from(b) + 4),
        3 => 4u32..260,
        1 => 0u32..4,
        1 => 260u32..300,
    ]
}

/// Entropies: a continuum plus a few repeated values (ties with the threshold included).
fn entropy() -> impl Strategy<Value = f32> {
    prop_oneof![4 => 0.0f32..4.0, 1 => prop::sample::select(vec![0.0f32, 1.0, 1.5, 2.0])]
}

fn row(max_len: usize) -> impl Strategy<Value = (Vec<u32>, Vec<f32>)> {
    (0..=max_len).prop_flat_map(|n| {
        (
            prop::collection::vec(id(), n),
            prop::collection::vec(entropy(), n),
        )
    })
}

fn scheme() -> impl Strategy<Value = PatchingScheme> {
    prop_oneof![
        (
            prop::sample::select(vec![0.0f32, 1.0, 1.5, 2.5]),
            any::<bool>()
        )
            .prop_map(|(threshold, monotonic)| PatchingScheme::Entropy {
                threshold,
                monotonic
            }),
        (-1.0f32..1.0).prop_map(|threshold| PatchingScheme::Entropy {
            threshold,
            monotonic: true
        }),
        (1usize..7).prop_map(|stride| PatchingScheme::Fixed { stride }),
        Just(PatchingScheme::Space),
        Just(PatchingScheme::Byte),
    ]
}

fn config() -> impl Strategy<Value = PatcherConfig> {
    (scheme(), 1usize..5, prop::option::of(0usize..6)).prop_map(|(scheme, min, extra)| {
        PatcherConfig::new(scheme)
            .with_min_patch_size(min)
            .with_max_patch_size(extra.map(|e| min + e))
    })
}

/// The start rule written straight from the specification, position by position, without
/// the incremental state machine the library uses.
fn reference_starts(config: &PatcherConfig, ids: &[u32], h: &[f32]) -> Vec<bool> {
    // None for a non-byte id, else whether the byte is space-like.
    let space_like = |id: u32| {
        id_to_byte(id).map(|b| !(b.is_ascii_alphanumeric() || (0x80..=0xbf).contains(&b)))
    };
    // "spacey" predecessor: a non-byte id counts as space-like.
    let spacey = |id: u32| space_like(id).unwrap_or(true);
    let is_end = |s: usize| match space_like(ids[s]) {
        None => true,
        Some(sl) => sl && (s == 0 || !spacey(ids[s - 1])),
    };
    let forced = config.scheme.last_forced_start();
    let mut starts = vec![false; ids.len() + 1];
    let mut last = 0;
    for t in 0..=ids.len() {
        let raw = match config.scheme {
            _ if t <= forced => true,
            PatchingScheme::Entropy {
                threshold,
                monotonic: false,
            } => h[t - 1] > threshold,
            PatchingScheme::Entropy {
                threshold,
                monotonic: true,
            } => h[t - 1] - h[t - 2] > threshold,
            PatchingScheme::Fixed { stride } => (t - 1) % stride == 0,
            PatchingScheme::Space => is_end(t - 1),
            PatchingScheme::Byte => true,
        };
        let run = t - last;
        let start = t <= forced
            || config.max_patch_size.is_some_and(|m| run >= m)
            || (raw && run >= config.min_patch_size);
        if start {
            last = t;
        }
        starts[t] = start;
    }
    starts
}

/// Every structural invariant of one patching of `t` ids.
fn check_invariants(config: &PatcherConfig, t: usize, p: &Patches) -> Result<(), TestCaseError> {
    prop_assert_eq!(p.lengths.iter().sum::<usize>(), t + 1);
    prop_assert_eq!(p.starts.len(), p.lengths.len());
    prop_assert_eq!(p.starts[0], 0);
    prop_assert!(p.starts.windows(2).all(|w| w[0] < w[1]));
    prop_assert!(*p.starts.last().unwrap() <= t);
    prop_assert!(p.lengths.iter().all(|&l| l >= 1));
    if t >= 1 {
        prop_assert_eq!(p.starts[1], 1);
        prop_assert_eq!(p.lengths[0], 1);
    }
    if let Some(max) = config.max_patch_size {
        prop_assert!(p.lengths.iter().all(|&l| l <= max), "{:?}", p.lengths);
    }
    // Min size holds for every patch but the last, unless the next start is a forced one.
    let forced = config.scheme.last_forced_start();
    for k in 0..p.lengths.len().saturating_sub(1) {
        if p.starts[k + 1] > forced {
            prop_assert!(p.lengths[k] >= config.min_patch_size, "{:?}", p.lengths);
        }
    }
    prop_assert_eq!(p.encoder_ids.len(), t);
    prop_assert_eq!(p.decoder_ids.len(), t);
    prop_assert_eq!(p.lengths_without_next().iter().sum::<usize>(), t);
    let num = p.num_patches();
    prop_assert_eq!(num, p.starts.iter().filter(|&&s| s < t).count());
    for i in 0..t {
        let enc = p.encoder_ids[i] as usize;
        prop_assert!(p.starts[enc] <= i && p.starts.get(enc + 1).is_none_or(|&e| i < e));
        let dec = p.decoder_ids[i] as usize;
        prop_assert!(dec < num && dec <= enc);
        // Patch dec(i) ends at a position ≤ i: it holds no later byte.
        let dec_end = p.starts.get(dec + 1).map_or(t, |&e| e - 1);
        prop_assert!(dec_end <= i, "dec({}) = {} ends at {}", i, dec, dec_end);
        // The next position lies in patch dec(i) + 1 (the virtual slot for i = t − 1).
        let next_patch = p
            .encoder_ids
            .get(i + 1)
            .map_or(p.starts.len() - 1, |&e| e as usize);
        prop_assert_eq!(dec + 1, next_patch);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn patching_invariants_and_reference((ids, h) in row(120), config in config()) {
        let patcher = Patcher::new(config).unwrap();
        let mask = patcher.patch_starts(&ids, Some(&h)).unwrap();
        prop_assert_eq!(&mask, &reference_starts(&config, &ids, &h));
        let p = patcher.patch(&ids, Some(&h)).unwrap();
        let from_mask: Vec<usize> = (0..mask.len()).filter(|&i| mask[i]).collect();
        prop_assert_eq!(&p.starts, &from_mask);
        check_invariants(&config, ids.len(), &p)?;
    }

    #[test]
    fn prefix_patches_as_the_prefix((ids, h) in row(80), config in config()) {
        let patcher = Patcher::new(config).unwrap();
        let full = patcher.patch(&ids, Some(&h)).unwrap();
        for len in 0..=ids.len() {
            let p = patcher.patch(&ids[..len], Some(&h[..len])).unwrap();
            let expected: Vec<usize> = full.starts.iter().copied().filter(|&s| s <= len).collect();
            prop_assert_eq!(&p.starts, &expected);
            prop_assert_eq!(&p.encoder_ids[..], &full.encoder_ids[..len]);
            // dec(i) = enc(i + 1) − 1 reads only the past, so all of it is shared.
            prop_assert_eq!(&p.decoder_ids[..], &full.decoder_ids[..len]);
            // Every patch but the last (which the next slot may still grow) is final.
            let done = p.lengths.len() - 1;
            prop_assert_eq!(&p.lengths[..done], &full.lengths[..done]);
        }
    }

    #[test]
    fn streaming_equals_batch((ids, h) in row(120), config in config()) {
        let patcher = Patcher::new(config).unwrap();
        let mask = patcher.patch_starts(&ids, Some(&h)).unwrap();
        let p = patcher.patch(&ids, Some(&h)).unwrap();
        let mut stream = patcher.stream();
        for (t, (&id, &e)) in ids.iter().zip(&h).enumerate() {
            prop_assert_eq!(stream.next_starts_patch(), mask[t]);
            let step = stream.try_push(id, Some(e)).unwrap();
            prop_assert_eq!(step.position, t);
            prop_assert_eq!(step.encoder_id, p.encoder_ids[t]);
            prop_assert_eq!(step.decoder_id, p.decoder_ids[t]);
            prop_assert_eq!(step.next_starts_patch, mask[t + 1]);
            prop_assert_eq!(stream.num_patches(), p.encoder_ids[t] as usize + 1);
        }
        prop_assert_eq!(stream.position(), ids.len());
        prop_assert_eq!(stream.num_patches(), p.num_patches());
    }

    #[test]
    fn ngram_stream_equals_batch(
        ids in prop::collection::vec(prop_oneof![0u32..300, any::<u32>()], 0..100),
        sizes in prop::collection::vec(1usize..12, 1..7),
        table_size in prop_oneof![1usize..1000, Just(500_002), Just(1 << 32)],
        prime in prop_oneof![Just(1_000_000_007i64), any::<i64>()],
    ) {
        let hasher = NgramHasher::new(sizes.clone(), table_size).unwrap().with_prime(prime);
        let batch = hasher.hash_ids(&ids);
        let mut flat = vec![0; sizes.len() * ids.len()];
        hasher.hash_ids_into(&ids, &mut flat).unwrap();
        prop_assert_eq!(&flat, &batch.concat());
        let mut stream = hasher.stream();
        let mut out = vec![0; sizes.len()];
        for (i, &id) in ids.iter().enumerate() {
            stream.push_into(id, &mut out).unwrap();
            for (k, row) in batch.iter().enumerate() {
                prop_assert_eq!(out[k], row[i]);
                prop_assert!((out[k] as usize) < table_size);
            }
        }
    }

    #[test]
    fn tokenizer_round_trips(bytes in prop::collection::vec(any::<u8>(), 0..300),
                             add_bos in any::<bool>(), add_eos in any::<bool>()) {
        let opts = EncodeOptions { add_bos, add_eos };
        let ids = ByteTokenizer.encode(&bytes, opts);
        prop_assert_eq!(ids.len(), bytes.len() + usize::from(add_bos) + usize::from(add_eos));
        prop_assert!(ids.iter().all(|&i| (i as usize) < blt_patching::VOCAB_SIZE));
        prop_assert_eq!(ByteTokenizer.decode(&ids), bytes);
    }
}
