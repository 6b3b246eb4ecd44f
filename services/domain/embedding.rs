//! Embeddings: exactly [`DIMENSION`] finite numbers, as the schema's `vector(1536)` columns require.

use super::fields::Violations;

/// The embedding dimension of every embedded resource.
pub const DIMENSION: usize = 1536;

/// A vector that can be stored or searched with.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Vec<f32>);

impl Embedding {
    /// Checks length and finiteness; violations name `field` (and the first bad index).
    pub fn parse(field: &str, values: Vec<f32>) -> Result<Self, Violations> {
        let mut violations = Violations::default();
        if values.len() != DIMENSION {
            violations.add(field, format!("must have exactly {DIMENSION} values, not {}", values.len()));
        } else if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            violations.add(format!("{field}[{i}]"), "must be a finite number (not NaN or infinity)");
        } else if values.iter().all(|v| *v == 0.0) {
            violations.add(field, "must not be the zero vector (it has no direction)");
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
        assert!(Embedding::parse("v", vec![0.5; DIMENSION]).is_ok());
        assert_eq!(Embedding::parse("v", vec![0.5; 3]).expect_err("short").0[0].field, "v");
        let mut nan = vec![0.5; DIMENSION];
        nan[7] = f32::NAN;
        assert_eq!(Embedding::parse("v", nan).expect_err("nan").0[0].field, "v[7]");
        let mut inf = vec![0.5; DIMENSION];
        inf[0] = f32::INFINITY;
        assert!(Embedding::parse("v", inf).is_err());
        assert!(Embedding::parse("v", vec![0.0; DIMENSION]).is_err());
    }
}
