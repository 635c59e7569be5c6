//! Type mappings between source and target databases, kept as tables of their own so a newcomer
//! finds every conversion rule in one place. PostgreSQL to PostgreSQL needs none (same types).

pub mod compat;
pub mod mysql;
