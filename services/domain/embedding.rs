//! Embeddings: exactly [`DIMENSION`] finite numbers, as the schema's `vector(1536)` columns require, with a norm
//! that pgvector's single-precision arithmetic can use.

use super::fields::Violations;

/// The embedding dimension of every embedded resource.
pub const DIMENSION: usize = 1536;

/// Smallest and largest accepted Euclidean norm. pgvector sums squares and products in single precision: a norm
/// whose square overflows `f32` (components near 3e38) or underflows it (components near 1e-45) makes every cosine
/// distance against it NaN. Inside these bounds the sums stay finite and normal for any pair of accepted vectors
/// (|a·b| <= |a||b| <= 1e30, and products of components of norm >= 1e-15 stay far above f32's smallest normal).
/// Vectors are stored as given, not normalized: GetEmbedding returns what SetEmbedding took.
pub const NORM_RANGE: (f64, f64) = (1e-15, 1e15);

/// A vector that can be stored or searched with.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Checks length and finiteness. Violations name the values themselves (an empty path) or the first bad one
    /// (`[7]`), to be put under the values' request path (`Violations::under("query.vector.values")`).
    pub fn parse(values: Vec<f32>) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        if values.len() != DIMENSION {
            violations.add("", format!("must have exactly {DIMENSION} values, not {}", values.len()));
        } else if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            violations.add(format!("[{i}]"), "must be a finite number (not NaN or infinity)");
        } else if values.iter().all(|v| *v == 0.0) {
            violations.add("", "must not be the zero vector (it has no direction)");
        } else {
            let norm = values.iter().map(|v| f64::from(*v) * f64::from(*v)).sum::<f64>().sqrt();
            if !(NORM_RANGE.0..=NORM_RANGE.1).contains(&norm) {
                violations.add(
                    "",
                    format!(
                        "must have a Euclidean norm between {:e} and {:e} (its norm is {norm:e}); \
                         similarity is computed in single precision",
                        NORM_RANGE.0, NORM_RANGE.1
                    ),
                );
            }
        }
        violations.into_result(Self(values))
    }

    /// The values.
    pub fn into_inner(self) -> Vec<f32> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_full_finite_nonzero_vectors_pass() {
        assert!(Embedding::parse(vec![0.5; DIMENSION]).is_ok());
        assert_eq!(Embedding::parse(vec![0.5; 3]).expect_err("short").under("v").0[0].field, "v");
        let mut nan = vec![0.5; DIMENSION];
        nan[7] = f32::NAN;
        assert_eq!(Embedding::parse(nan).expect_err("nan").under("v").0[0].field, "v[7]");
        let mut inf = vec![0.5; DIMENSION];
        inf[0] = f32::INFINITY;
        assert!(Embedding::parse(inf).is_err());
        assert!(Embedding::parse(vec![0.0; DIMENSION]).is_err());
        // Norms whose square overflows or underflows f32 poison every cosine distance in pgvector.
        assert!(Embedding::parse(vec![3e38; DIMENSION]).is_err());
        assert!(Embedding::parse(vec![1e-45; DIMENSION]).is_err());
        assert!(Embedding::parse(vec![1e-3; DIMENSION]).is_ok());
        assert!(Embedding::parse(vec![1e12; DIMENSION]).is_ok());
    }
}
