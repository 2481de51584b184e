//! The course's exercises as progress sees them: the matrix columns, and the
//! checks of one exercise from its section's sidecar file.

use crate::course::Course;
use crate::course::checks::{ChecksFile, ExerciseChecks};

use super::matrix::ExerciseColumn;

/// Every exercise (and scenario) of every section, in course order.
pub fn exercise_columns(course: &Course) -> Vec<ExerciseColumn> {
    let mut columns = Vec::new();
    for section in &course.sections {
        let Ok(page) = course.section_page(&section.slug) else {
            continue;
        };
        columns.extend(page.section.exercises.iter().map(|e| ExerciseColumn {
            id: e.id.clone(),
            title: e.title.clone(),
        }));
    }
    columns
}

/// Why an exercise cannot be checked.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("there is no exercise {0} in this course")]
    UnknownExercise(String),
    #[error("exercise {0} has no automatic check: compare your work with the lesson")]
    NoChecks(String),
    #[error("the checks of this section cannot be read: {0}")]
    BadSidecar(String),
}

/// The checks of exercise `id` (like `14.B.2`), from its section's sidecar.
pub fn exercise_checks(course: &Course, id: &str) -> Result<ExerciseChecks, CatalogError> {
    let unknown = || CatalogError::UnknownExercise(id.to_string());
    let number: u32 = id
        .split('.')
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(unknown)?;
    let section = course
        .sections
        .iter()
        .find(|s| s.number == number)
        .ok_or_else(unknown)?;
    let page = course.section_page(&section.slug).map_err(|_| unknown())?;
    if !page.section.exercises.iter().any(|e| e.id == id) {
        return Err(unknown());
    }
    let sidecar = ChecksFile::path_for(&course.dir().join(format!("{}.md", section.slug)));
    let file = ChecksFile::load(&sidecar)
        .map_err(CatalogError::BadSidecar)?
        .ok_or_else(|| CatalogError::NoChecks(id.to_string()))?;
    file.exercise(id)
        .filter(|e| !e.checks.is_empty())
        .cloned()
        .ok_or_else(|| CatalogError::NoChecks(id.to_string()))
}
