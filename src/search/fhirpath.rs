//! The FHIRPath subset used by search-parameter expressions: parsed once into an [`Expr`],
//! evaluated over `serde_json::Value` by [`eval`](Expr::eval) without cloning JSON.
//!
//! Supported: path navigation (arrays flatten implicitly; `value` finds `valueQuantity`, ...),
//! a leading type name (`Observation.code`; `Resource` / `DomainResource` match any resource),
//! relative paths, `%resource`, indexers `[n]`, `|`, `=`, `!=`, `and`, the `is` and `as`
//! operators, `.as()`, `ofType()`, `where()`, `exists()`, `resolve()`, `extension('url')`,
//! and string / boolean literals. Anything else is a parse error.

mod eval;
mod parse;

pub use eval::Item;
pub use parse::parse;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `$this`: the evaluation context; relative paths start here.
    This,
    /// `%resource`: the resource being indexed.
    Resource,
    /// A type name at the head of a path: the context if it is a resource of that type.
    TypeRoot(Box<str>),
    /// `.name` on every input item. `choice`: some type has a choice element `name[x]`, so a
    /// missing `name` is looked up as `name` + a type suffix (`valueQuantity`).
    Child {
        base: Box<Expr>,
        name: Box<str>,
        choice: bool,
    },
    /// `[n]`.
    Index(Box<Expr>, usize),
    /// `a | b | ...` (duplicates are kept; the indexer removes them).
    Union(Vec<Expr>),
    Where(Box<Expr>, Box<Expr>),
    Exists(Box<Expr>),
    /// `as T`, `.as(T)`, `.ofType(T)`: the items of type `T`.
    OfType(Box<Expr>, Box<str>),
    /// `is T`.
    Is(Box<Expr>, Box<str>),
    Resolve(Box<Expr>),
    /// `extension('url')`.
    Extension(Box<Expr>, Box<str>),
    /// `=` (`negated: false`) or `!=`.
    Equals {
        left: Box<Expr>,
        right: Box<Expr>,
        negated: bool,
    },
    And(Box<Expr>, Box<Expr>),
    Str(Box<str>),
    Bool(bool),
}
