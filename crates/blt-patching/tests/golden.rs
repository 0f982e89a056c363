//! Golden values: the official fixture (reference §15), the worked example of reference §7.2,
//! the hash n-gram ids of reference §15, and a hand-derived space patching.

use blt_patching::{
    ByteTokenizer, DEFAULT_ENTROPY_THRESHOLD, EncodeOptions, NgramHasher, Patcher, PatcherConfig,
    PatchingScheme,
};

// Source: facebookresearch/blt fixtures/tokens_with_entropies.json (real entropy-model output
// for "Daenerys Targaryen is in Game of Thrones, a fantasy epic by George R.R. Martin." with
// BOS and EOS): columns `token_ids`, `entropies` (decimal text kept verbatim), `start`, `patch`.
const IDS: [u32; 81] = [
    1, 72, 101, 105, 114, 105, 118, 125, 119, 36, 88, 101, 118, 107, 101, 118, 125, 105, 114, 36,
    109, 119, 36, 109, 114, 36, 75, 101, 113, 105, 36, 115, 106, 36, 88, 108, 118, 115, 114, 105,
    119, 48, 36, 101, 36, 106, 101, 114, 120, 101, 119, 125, 36, 105, 116, 109, 103, 36, 102, 125,
    36, 75, 105, 115, 118, 107, 105, 36, 86, 50, 86, 50, 36, 81, 101, 118, 120, 109, 114, 50, 2,
];
#[allow(
    clippy::excessive_precision,
    reason = "the fixture's decimal text, verbatim"
)]
const ENTROPIES: [f32; 81] = [
    3.3949158192,
    2.1656451225,
    2.3216569424,
    2.8214058876,
    1.5249242783,
    0.0401624143,
    0.0981037766,
    0.0544578359,
    0.3430138826,
    1.0546212196,
    0.25252828,
    0.1494535804,
    0.0624754503,
    0.001355894,
    0.0050173439,
    0.0052358187,
    0.0011725067,
    0.0010307421,
    1.0241208076,
    3.6867966652,
    0.4502205253,
    0.0484119244,
    2.2572875023,
    0.3789347112,
    1.0042934418,
    2.9090054035,
    1.8933598995,
    1.3859074116,
    0.3827198744,
    0.2646365762,
    1.7742085457,
    0.0136727821,
    0.0053820172,
    0.5485631227,
    0.2064044327,
    0.0049266233,
    0.0005439016,
    0.0007023578,
    0.0004170335,
    0.0054524317,
    1.1938130856,
    0.0238215197,
    3.1279797554,
    1.3883389235,
    3.0503094196,
    1.695879817,
    1.8551058769,
    1.4570231438,
    0.0047810897,
    0.026396824,
    0.6633765101,
    0.3141393065,
    2.8411159515,
    1.143143177,
    0.0520330966,
    0.3398066461,
    0.4140175879,
    2.5563707352,
    1.3370712996,
    0.0227173548,
    3.4447185993,
    1.8576486111,
    0.8189754486,
    0.6776530743,
    0.0677763447,
    0.212713033,
    0.1003480032,
    0.1746164262,
    0.4123829603,
    0.5507118702,
    0.1047425047,
    0.0194335245,
    0.001482119,
    0.0009310447,
    0.0002176317,
    0.0076908777,
    0.0003866984,
    0.0008008487,
    1.2395234108,
    0.4564163089,
    4.61392e-05,
];
const START: [u8; 81] = [
    1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 1, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];
const PATCH: [u32; 81] = [
    0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 6, 7, 7, 7, 8, 9, 10, 10, 10,
    11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 11, 12, 13, 14, 15, 16, 17, 17, 17, 17, 17, 18, 18,
    18, 18, 18, 19, 20, 20, 21, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22, 22,
    22, 22,
];
const TEXT: &str =
    "Daenerys Targaryen is in Game of Thrones, a fantasy epic by George R.R. Martin.";

/// The released threshold, 1.335442066192627, as written in `PatcherArgs.threshold`.
const THRESHOLD_F64: f64 = 1.335442066192627;

fn fixture_patches() -> blt_patching::Patches {
    let patcher = Patcher::new(PatcherConfig::default()).unwrap();
    patcher.patch(&IDS, Some(&ENTROPIES)).unwrap()
}

#[test]
fn fixture_ids_are_the_tokenized_text() {
    assert_eq!(
        ByteTokenizer.encode(TEXT.as_bytes(), EncodeOptions::DOCUMENT),
        IDS
    );
}

#[test]
fn fixture_start_and_patch_columns() {
    assert_eq!(
        f64::from(DEFAULT_ENTROPY_THRESHOLD) as f32,
        THRESHOLD_F64 as f32
    );
    let patcher = Patcher::new(PatcherConfig::default()).unwrap();
    let mask = patcher.patch_starts(&IDS, Some(&ENTROPIES)).unwrap();
    let expected: Vec<bool> = START.iter().map(|&s| s == 1).collect();
    assert_eq!(mask[..81], expected[..]);
    // H[80] = 4.6e-5 ≤ θ: the virtual slot joins the last patch.
    assert!(!mask[81]);
    assert_eq!(fixture_patches().encoder_ids, PATCH);
}

/// The comparison runs in f32 (what torch does for an f32 tensor against a Python float).
/// On this fixture f32 and f64 agree: the entropy nearest θ is H[58] = 1.3370713 (it opens
/// position 59), 1.6e-3 above θ, far beyond f32 rounding (~1e-7), so either precision
/// reproduces the `start` column.
#[test]
fn fixture_is_not_on_a_precision_knife_edge() {
    let nearest = ENTROPIES
        .iter()
        .map(|&h| (f64::from(h) - THRESHOLD_F64).abs())
        .fold(f64::INFINITY, f64::min);
    assert!(nearest > 1e-3, "{nearest}");
    for (t, &h) in ENTROPIES.iter().enumerate().take(80).skip(1) {
        assert_eq!(
            f64::from(h) > THRESHOLD_F64,
            h > DEFAULT_ENTROPY_THRESHOLD,
            "H[{t}]"
        );
    }
    assert_eq!(START[59], 1);
}

#[test]
fn fixture_lengths_and_ids_of_reference_15() {
    let p = fixture_patches();
    let with_next = [
        1, 1, 1, 1, 1, 15, 3, 3, 1, 1, 3, 12, 1, 1, 1, 1, 1, 5, 5, 1, 2, 1, 20,
    ];
    let without_next = [
        1, 1, 1, 1, 1, 15, 3, 3, 1, 1, 3, 12, 1, 1, 1, 1, 1, 5, 5, 1, 2, 1, 19,
    ];
    assert_eq!(p.lengths, with_next);
    assert_eq!(p.lengths_without_next(), without_next);
    assert_eq!(p.num_patches(), 23);

    let mut enc = vec![0, 1, 2, 3, 4];
    enc.extend([5; 15]);
    enc.extend([6, 6, 6, 7, 7, 7, 8, 9, 10, 10]);
    assert_eq!(p.encoder_ids[..30], enc[..]);

    let mut dec = vec![0, 1, 2, 3];
    dec.extend([4; 15]);
    dec.extend([5, 5, 5, 6, 6, 6, 7, 8, 9, 9, 9]);
    assert_eq!(p.decoder_ids[..30], dec[..]);
    for i in 0..80 {
        assert_eq!(p.decoder_ids[i], p.encoder_ids[i + 1] - 1);
    }
    // The virtual slot joins patch 22, so the last byte reads patch 21.
    assert_eq!(p.decoder_ids[80], 21);
}

/// Reference §7.2: x0..x7 with starts {0, 1, 2, 5}, in both cases for H[7].
#[test]
fn worked_example_of_reference_7_2() {
    let patcher = Patcher::new(PatcherConfig::new(PatchingScheme::entropy(1.0))).unwrap();
    let ids = [1, 10, 11, 12, 13, 14, 15, 16];
    // H[1] and H[4] above θ open positions 2 and 5.
    let mut h = [0.5, 2.0, 0.5, 0.5, 2.0, 0.5, 0.5, 0.0];

    h[7] = 2.0; // H[7] > θ: x8 opens a new patch.
    let p = patcher.patch(&ids, Some(&h)).unwrap();
    assert_eq!(p.starts, [0, 1, 2, 5, 8]);
    assert_eq!(p.lengths, [1, 1, 3, 3, 1]);
    assert_eq!(p.encoder_ids, [0, 1, 2, 2, 2, 3, 3, 3]);
    assert_eq!(p.decoder_ids, [0, 1, 1, 1, 2, 2, 2, 3]);
    assert_eq!(p.num_patches(), 4);
    assert_eq!(p.lengths_without_next(), [1, 1, 3, 3]);

    h[7] = 0.5; // H[7] ≤ θ: x8 joins patch 3.
    let p = patcher.patch(&ids, Some(&h)).unwrap();
    assert_eq!(p.starts, [0, 1, 2, 5]);
    assert_eq!(p.lengths, [1, 1, 3, 4]);
    assert_eq!(p.encoder_ids, [0, 1, 2, 2, 2, 3, 3, 3]);
    assert_eq!(p.decoder_ids, [0, 1, 1, 1, 2, 2, 2, 2]);
    assert_eq!(p.num_patches(), 4);
}

/// Reference §15 hash ids (prime 1000000007, 500002 rows, positions 0..9 of the fixture ids).
/// They agree with this implementation, re-derived by hand from the definition:
/// - n = 3, position 0: the window is [0, 0, 1] (two pad zeros, then BOS = 1 as the newest id,
///   weight p^2), so h = p^2 = 1000000014000000049 (< 2^63, no wrap) and
///   h mod 500002 = 443987.
/// - n = 3, position 1: the window is [0, 1, 72], so h = 1·p + 72·p^2 =
///   72000001009000003535, which wraps in i64 to 72000001009000003535 − 4·2^64 =
///   −1786975285838202929, whose floor-mod 500002 is 348935.
///
/// Both are the values listed, so the wrapping i64 arithmetic and floor-mod are as in torch.
#[test]
fn hash_ids_of_reference_15() {
    let hasher = NgramHasher::new(vec![3, 4, 8], 500_002).unwrap();
    assert_eq!(hasher.prime(), 1_000_000_007);
    let rows = hasher.hash_ids(&IDS[..10]);
    let n3 = [
        443987, 348935, 37502, 294216, 274140, 242340, 50093, 202570, 414224, 201424,
    ];
    let n4 = [
        437197, 281585, 189712, 127061, 29038, 267201, 129446, 401070, 26871, 381272,
    ];
    let n8 = [
        172383, 323061, 340750, 41807, 150805, 85526, 382522, 178197, 31469, 49357,
    ];
    assert_eq!(rows, [n3.to_vec(), n4.to_vec(), n8.to_vec()]);
    // Hashing the whole row gives the same first ten (windows only look back).
    let full = hasher.hash_ids(&IDS);
    for (k, row) in full.iter().enumerate() {
        assert_eq!(row[..10], rows[k][..]);
    }
    // The hand computation above.
    let p = 1_000_000_007i64;
    assert_eq!((p * p).rem_euclid(500_002), 443_987);
    let h1 = p.wrapping_add(72i64.wrapping_mul(p.wrapping_mul(p)));
    assert_eq!(h1, -1_786_975_285_838_202_929);
    assert_eq!(h1.rem_euclid(500_002), 348_935);
}

/// SpaceByte rule on the fixture text, derived by hand: a patch ends at a space-like byte that
/// follows a word byte (and at BOS/EOS); " a " after "Thrones," merges the comma's trailing
/// space, and ". " after "R." likewise; EOS at 80 ends a patch, so the virtual slot 81 opens one.
#[test]
fn space_patching_of_the_fixture_text() {
    let patcher = Patcher::new(PatcherConfig::new(PatchingScheme::Space)).unwrap();
    let p = patcher.patch(&IDS, None).unwrap();
    assert_eq!(
        p.starts,
        [
            0, 1, 10, 20, 23, 26, 31, 34, 42, 45, 53, 58, 61, 68, 70, 72, 80, 81
        ]
    );
    let words: Vec<String> = p.starts[..p.starts.len() - 1]
        .iter()
        .zip(&p.starts[1..])
        .map(|(&s, &e)| String::from_utf8(ByteTokenizer.decode(&IDS[s..e])).unwrap())
        .collect();
    assert_eq!(words[1], "Daenerys ");
    assert_eq!(words[7], "Thrones,");
    assert_eq!(words[8], " a ");
    assert_eq!(words[15], " Martin.");
}
