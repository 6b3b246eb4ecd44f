//! Reciprocal rank fusion (Cormack et al., 2009): each list contributes `weight / (k + rank)` for every item it
//! ranks (ranks start at 1), and items are ordered by the sum. `k` (default 60) damps the head of each list so one
//! list's first place cannot drown the other's.

use std::collections::HashMap;
use std::hash::Hash;

/// The default fusion constant.
pub const DEFAULT_K: u32 = 60;

/// One fused item: its score and its 1-based rank in each input list (0 when absent).
#[derive(Debug, Clone, PartialEq)]
pub struct Fused<T> {
    /// The item.
    pub item: T,
    /// Sum of weight / (k + rank) over the lists it is in.
    pub score: f64,
    /// Rank in each list, in the order the lists were given; 0 where absent.
    pub ranks: Vec<u32>,
}

/// Fuses ranked `lists` (best first) with their `weights`; ties broken by the item's order of first appearance.
pub fn reciprocal_rank_fusion<T: Clone + Eq + Hash>(lists: &[(&[T], f64)], k: u32) -> Vec<Fused<T>> {
    let mut fused: Vec<Fused<T>> = Vec::new();
    let mut index: HashMap<T, usize> = HashMap::new();
    for (list_no, (items, weight)) in lists.iter().enumerate() {
        for (position, item) in items.iter().enumerate() {
            let rank = position as u32 + 1;
            let slot = *index.entry(item.clone()).or_insert_with(|| {
                fused.push(Fused { item: item.clone(), score: 0.0, ranks: vec![0; lists.len()] });
                fused.len() - 1
            });
            fused[slot].score += weight / f64::from(k + rank);
            fused[slot].ranks[list_no] = rank;
        }
    }
    // A stable sort keeps first-appearance order among equal scores.
    fused.sort_by(|a, b| b.score.total_cmp(&a.score));
    fused
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fuses_as_documented() {
        let text = ["a", "b", "c"];
        let vector = ["c", "d"];
        let fused = reciprocal_rank_fusion(&[(&text[..], 1.0), (&vector[..], 1.0)], 60);
        let order: Vec<&str> = fused.iter().map(|f| f.item).collect();
        assert_eq!(order, vec!["c", "a", "b", "d"], "c is in both lists; b and d tie, b appeared first");
        let c = &fused[0];
        assert!((c.score - (1.0 / 63.0 + 1.0 / 61.0)).abs() < 1e-12);
        assert_eq!(c.ranks, vec![3, 1]);
        assert_eq!(fused[3].ranks, vec![0, 2], "d only in the vector list");

        let weighted = reciprocal_rank_fusion(&[(&text[..], 0.0), (&vector[..], 1.0)], 60);
        assert_eq!(weighted[0].item, "c", "with the text list weighted 0 only the vector order counts");
    }
}
